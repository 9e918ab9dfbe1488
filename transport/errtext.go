package transport

import "strings"

// errorText is err's text for a status message the transport builds
// around it ("transport: connection closed: <cause>"): a status error
// inside the chain gives only its description (never "rpc error: code =
// … desc = …" inside a status), and the package prefixes the layers
// added on the way ("transport: ", "controlbuf: ", "rpc: ") are dropped
// wherever a part of the text begins, since the message adds its own.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	for {
		i := strings.Index(msg, "rpc error: code = ")
		if i < 0 {
			break
		}
		j := strings.Index(msg[i:], " desc = ")
		if j < 0 {
			break
		}
		msg = msg[:i] + msg[i+j+len(" desc = "):]
	}
	var b strings.Builder
	for part := range strings.SplitSeq(msg, ": ") {
		switch part {
		case "", "transport", "controlbuf", "rpc":
			// A package prefix (the text was split at its ": ").
			continue
		}
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(part)
	}
	return b.String()
}
