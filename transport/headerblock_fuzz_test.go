package transport

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzHeaderBlock decodes two header blocks on one headerBlock, each cut
// into fragments of a fuzzed size, under a fuzzed list limit. The first
// is a field list HPACK-encoded with hpack.Encoder: it must decode to the
// same fields when they are valid and under the limit, and otherwise
// fail only its stream with the right reason. The second is arbitrary
// bytes, compared with a reference hpack.Decoder kept in step: no panic,
// connection errors only of type COMPRESSION_ERROR or ENHANCE_YOUR_CALM,
// and a block that decodes gives the reference's fields (so the dynamic
// table stays in step after a block that failed its stream).
func FuzzHeaderBlock(f *testing.F) {
	f.Add(":method=POST\n:path=/a.B/C\ncontent-type=application/grpc\nte=trailers\nx-bin=\x00\xff", []byte{0x82, 0xbe}, uint8(0), uint16(0))
	f.Add(":status=200\ngrpc-status=0\ngrpc-message=ok%20", []byte{0x3f, 0xe1, 0x1f}, uint8(3), uint16(100))
	f.Add("Upper=x\n:late=y", []byte{0x40, 0x01, 'a', 0x01, 'b'}, uint8(1), uint16(40))
	f.Add("connection=close\nte=gzip\nbad=\x01", []byte{0x00, 0x7f, 0xff, 0xff, 0xff, 0x0f}, uint8(7), uint16(16<<10))
	f.Add(strings.Repeat("k=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\n", 40), []byte{0xff, 0xff, 0xff, 0xff}, uint8(2), uint16(300))
	f.Fuzz(func(t *testing.T, spec string, garbage []byte, split uint8, limit uint16) {
		lim := 64 + uint32(limit)%(32<<10)
		var fields []hpack.HeaderField
		for line := range strings.SplitSeq(spec, "\n") {
			if len(fields) == 64 {
				break
			}
			name, value, _ := strings.Cut(line, "=")
			fields = append(fields, hpack.HeaderField{Name: name, Value: value, Sensitive: strings.HasPrefix(name, "s")})
		}
		var enc bytes.Buffer
		e := hpack.NewEncoder(&enc)
		for _, fl := range fields {
			e.WriteField(fl)
		}
		block := enc.Bytes()

		hb := newHeaderBlock(lim)
		ref := hpack.NewDecoder(4096, nil)
		ref.SetMaxStringLength(maxStringFactor * int(lim))

		// The encoded list.
		got, blockErr, err := decodeFragments(hb, 1, block, split)
		refFields, refErr := ref.DecodeFull(block)
		if refErr != nil && !errors.Is(refErr, hpack.ErrStringLength) {
			t.Fatalf("reference decoder fails on hpack.Encoder's block: %v", refErr)
		}
		if refErr != nil && err == nil {
			t.Fatalf("a field over %d bytes was decoded", maxStringFactor*lim)
		}
		if err != nil {
			checkBlockConnError(t, err, len(block), split, lim)
			return
		}
		var size uint32
		var wantErr string
		seen := false
		for _, fl := range fields {
			size += fl.Size()
			if size > lim {
				wantErr = "too large"
				break
			}
			if !fieldOK(fl, &seen) {
				wantErr = "invalid"
				break
			}
		}
		switch {
		case wantErr == "" && blockErr != nil:
			t.Fatalf("valid list of %d bytes (limit %d) failed: %v", size, lim, blockErr)
		case wantErr == "":
			if len(got) != len(fields) {
				t.Fatalf("decoded %d fields, encoded %d", len(got), len(fields))
			}
			for i := range got {
				if got[i] != fields[i] || got[i] != refFields[i] {
					t.Fatalf("field %d decoded as %+v, encoded %+v", i, got[i], fields[i])
				}
			}
		case wantErr == "too large" && !errors.Is(blockErr, errHeaderListTooLarge):
			t.Fatalf("list over the limit %d: block error %v, want errHeaderListTooLarge", lim, blockErr)
		case wantErr == "invalid" && (blockErr == nil || errors.Is(blockErr, errHeaderListTooLarge)):
			t.Fatalf("list with an invalid field: block error %v", blockErr)
		}

		// Arbitrary bytes, decoded with the same dynamic table.
		got, blockErr, err = decodeFragments(hb, 3, garbage, split)
		refFields, refErr = ref.DecodeFull(garbage)
		if err != nil {
			checkBlockConnError(t, err, len(garbage), split, lim)
			var ce *ConnectionError
			errors.As(err, &ce)
			if ce.Code == http2.ErrCodeCompression && refErr == nil {
				t.Fatalf("COMPRESSION_ERROR (%v) on a block the reference decodes", err)
			}
			return
		}
		if refErr != nil {
			t.Fatalf("block decoded (%d fields, %v) where the reference fails: %v", len(got), blockErr, refErr)
		}
		if blockErr == nil {
			if len(got) != len(refFields) {
				t.Fatalf("decoded %d fields, reference %d", len(got), len(refFields))
			}
			size = 0
			seen = false
			for i := range got {
				size += got[i].Size()
				if got[i] != refFields[i] || !fieldOK(got[i], &seen) {
					t.Fatalf("field %d: %+v, reference %+v", i, got[i], refFields[i])
				}
			}
			if size > lim {
				t.Fatalf("accepted %d bytes of fields, limit %d", size, lim)
			}
		}
	})
}

// decodeFragments decodes block on hb as one HEADERS frame of stream id
// and CONTINUATION frames of split bytes each (0: one frame), returning a
// copy of the fields, the block's stream error and a connection error.
func decodeFragments(hb *headerBlock, id uint32, block []byte, split uint8) ([]hpack.HeaderField, error, error) {
	hb.start(id, false)
	n := len(block)
	if split > 0 {
		n = int(split)
	}
	for {
		frag := block[:min(n, len(block))]
		block = block[len(frag):]
		done, err := hb.add(frag, len(block) == 0)
		if err != nil {
			return nil, nil, err
		}
		if done {
			fields := append([]hpack.HeaderField(nil), hb.fields...)
			berr := hb.blockError()
			hb.release()
			return fields, berr, nil
		}
	}
}

// checkBlockConnError fails unless err is a connection error a block of
// encLen bytes in fragments of split bytes may draw.
func checkBlockConnError(t *testing.T, err error, encLen int, split uint8, lim uint32) {
	t.Helper()
	var ce *ConnectionError
	if !errors.As(err, &ce) {
		t.Fatalf("decoding failed with %v (%T), not a *ConnectionError", err, err)
	}
	switch ce.Code {
	case http2.ErrCodeCompression:
	case http2.ErrCodeEnhanceYourCalm:
		frames := 1
		if split > 0 {
			frames = max(1, (encLen+int(split)-1)/int(split))
		}
		encLimit := encodedCap(lim)
		if encLen <= encLimit && frames <= 4+encLimit/minFragment && !errors.Is(err, hpack.ErrStringLength) {
			t.Fatalf("ENHANCE_YOUR_CALM (%v) on a block of %d bytes in %d frames (limit %d)", err, encLen, frames, lim)
		}
	default:
		t.Fatalf("connection error %v has code %v", err, ce.Code)
	}
}

// fieldOK is RFC 9113 §8.2 written out independently of checkField.
func fieldOK(f hpack.HeaderField, sawRegular *bool) bool {
	if !httpguts.ValidHeaderFieldValue(f.Value) {
		return false
	}
	if strings.HasPrefix(f.Name, ":") {
		return !*sawRegular
	}
	*sawRegular = true
	if f.Name == "" || f.Name != strings.ToLower(f.Name) || !httpguts.ValidHeaderFieldName(f.Name) {
		return false
	}
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return false
	case "te":
		return f.Value == "trailers"
	}
	return true
}
