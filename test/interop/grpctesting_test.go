package interop_test

// Checks of the grpc.testing package: its generated code is what the
// .proto files under proto/ generate today, and its messages and services
// are wire-compatible with grpc-go's.

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	testpb "github.com/h2rpc/h2rpc/test/interop/grpc_testing"
)

var update = flag.Bool("update", false, "rewrite the generated files under grpc_testing/ instead of comparing them")

// protoFiles are the .proto files of grpc.testing, relative to proto/.
var protoFiles = []string{
	"grpc/testing/empty.proto",
	"grpc/testing/messages.proto",
	"grpc/testing/test.proto",
}

// TestGeneratedCodeIsCurrent runs protoc with protoc-gen-go and our
// protoc-gen-rpc on proto/grpc/testing and fails when a file under
// grpc_testing/ differs from what they generate now. Regenerate with
//
//	go test -run TestGeneratedCodeIsCurrent -update
func TestGeneratedCodeIsCurrent(t *testing.T) {
	protoc := os.Getenv("PROTOC")
	if protoc == "" {
		var err error
		if protoc, err = exec.LookPath("protoc"); err != nil {
			t.Fatalf("protoc is not installed (%v): install protobuf-compiler or set $PROTOC", err)
		}
	}
	bin := t.TempDir()
	for _, b := range []struct{ out, pkg string }{
		{"protoc-gen-go", "google.golang.org/protobuf/cmd/protoc-gen-go"},
		{"protoc-gen-rpc", "github.com/h2rpc/h2rpc/cmd/protoc-gen-rpc"},
	} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, b.out), b.pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	const module = "github.com/h2rpc/h2rpc/test/interop"
	out := t.TempDir()
	args := []string{
		"-I", "proto",
		"--plugin=protoc-gen-go=" + filepath.Join(bin, "protoc-gen-go"),
		"--plugin=protoc-gen-rpc=" + filepath.Join(bin, "protoc-gen-rpc"),
		"--go_out=" + out, "--go_opt=module=" + module,
		"--rpc_out=" + out, "--rpc_opt=module=" + module,
	}
	if b, err := exec.Command(protoc, append(args, protoFiles...)...).CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}

	generated, err := filepath.Glob(filepath.Join(out, "grpc_testing", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := filepath.Glob(filepath.Join("grpc_testing", "*.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	stale := make(map[string]bool)
	for _, c := range committed {
		stale[filepath.Base(c)] = true
	}
	if len(generated) == 0 {
		t.Fatal("protoc generated nothing under grpc_testing/")
	}
	for _, g := range generated {
		name := filepath.Base(g)
		delete(stale, name)
		got, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("grpc_testing", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s is generated but not committed (%v); run go test -run TestGeneratedCodeIsCurrent -update", path, err)
			continue
		}
		if !bytes.Equal(maskProtocVersion(got), maskProtocVersion(want)) {
			t.Errorf("%s is out of date; run go test -run TestGeneratedCodeIsCurrent -update", path)
		}
	}
	for name := range stale {
		t.Errorf("grpc_testing/%s is not generated from any .proto file", name)
	}
}

// protocVersionLine matches the protoc version in the headers of the
// generated files, which depends on the protoc installed, not the code.
var protocVersionLine = regexp.MustCompile(`(?m)^//\s+(- )?protoc\s+\S+$`)

func maskProtocVersion(b []byte) []byte {
	return protocVersionLine.ReplaceAll(b, []byte("// protoc (version masked)"))
}

// TestWireCompatibleWithGrpcGo compares our grpc.testing descriptors with
// grpc-go's: every message and enum we define must exist there with the
// same fields (number, name, label, type) and values, and every method of
// our services must exist there with the same types and streaming.
// grpc-go's descriptors come from a separate program (internal/grpcdesc):
// both packages register the same names, so they cannot share a binary.
func TestWireCompatibleWithGrpcGo(t *testing.T) {
	cmd := exec.Command("go", "run", "./internal/grpcdesc")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run ./internal/grpcdesc: %v\n%s", err, stderr.String())
	}
	theirs := &descriptorpb.FileDescriptorSet{}
	if err := proto.Unmarshal(raw, theirs); err != nil {
		t.Fatal(err)
	}
	ours := []protoreflect.FileDescriptor{
		testpb.File_grpc_testing_empty_proto,
		testpb.File_grpc_testing_messages_proto,
		testpb.File_grpc_testing_test_proto,
	}

	theirMsgs, theirEnums, theirSvcs := index(theirs.File)
	var ourFiles []*descriptorpb.FileDescriptorProto
	for _, fd := range ours {
		ourFiles = append(ourFiles, protodesc.ToFileDescriptorProto(fd))
	}
	ourMsgs, ourEnums, ourSvcs := index(ourFiles)

	for _, name := range sortedKeys(ourMsgs) {
		their, ok := theirMsgs[name]
		if !ok {
			t.Errorf("message %s is not in grpc-go's grpc.testing", name)
			continue
		}
		if diff := fieldsDiff(ourMsgs[name], their); diff != "" {
			t.Errorf("message %s differs from grpc-go's:%s", name, diff)
		}
	}
	for _, name := range sortedKeys(ourEnums) {
		their, ok := theirEnums[name]
		if !ok {
			t.Errorf("enum %s is not in grpc-go's grpc.testing", name)
			continue
		}
		if a, b := enumString(ourEnums[name]), enumString(their); a != b {
			t.Errorf("enum %s: ours %s, grpc-go's %s", name, a, b)
		}
	}
	for _, name := range sortedKeys(ourSvcs) {
		their, ok := theirSvcs[name]
		if !ok {
			t.Errorf("service %s is not in grpc-go's grpc.testing", name)
			continue
		}
		theirMethods := make(map[string]string)
		for _, m := range their.GetMethod() {
			theirMethods[m.GetName()] = methodString(m)
		}
		for _, m := range ourSvcs[name].GetMethod() {
			if got, want := methodString(m), theirMethods[m.GetName()]; got != want {
				t.Errorf("%s/%s: ours %s, grpc-go's %q", name, m.GetName(), got, want)
			}
		}
	}
	var left []string
	for _, name := range sortedKeys(theirMsgs) {
		if _, ok := ourMsgs[name]; !ok {
			left = append(left, name)
		}
	}
	t.Logf("grpc-go messages we leave out (no TestService method uses them): %s", strings.Join(left, ", "))
	for _, name := range []string{"grpc.testing.TestService", "grpc.testing.UnimplementedService"} {
		if _, ok := ourSvcs[name]; !ok {
			t.Errorf("service %s is missing", name)
		}
	}
}

// index maps the messages (nested ones included, map entries too), enums
// and services of files by full name.
func index(files []*descriptorpb.FileDescriptorProto) (map[string]*descriptorpb.DescriptorProto, map[string]*descriptorpb.EnumDescriptorProto, map[string]*descriptorpb.ServiceDescriptorProto) {
	msgs := make(map[string]*descriptorpb.DescriptorProto)
	enums := make(map[string]*descriptorpb.EnumDescriptorProto)
	svcs := make(map[string]*descriptorpb.ServiceDescriptorProto)
	var walk func(prefix string, m *descriptorpb.DescriptorProto)
	walk = func(prefix string, m *descriptorpb.DescriptorProto) {
		name := prefix + "." + m.GetName()
		msgs[name] = m
		for _, e := range m.GetEnumType() {
			enums[name+"."+e.GetName()] = e
		}
		for _, n := range m.GetNestedType() {
			walk(name, n)
		}
	}
	for _, f := range files {
		for _, m := range f.GetMessageType() {
			walk(f.GetPackage(), m)
		}
		for _, e := range f.GetEnumType() {
			enums[f.GetPackage()+"."+e.GetName()] = e
		}
		for _, s := range f.GetService() {
			svcs[f.GetPackage()+"."+s.GetName()] = s
		}
	}
	return msgs, enums, svcs
}

// fieldsDiff describes how the fields of two messages differ.
func fieldsDiff(ours, theirs *descriptorpb.DescriptorProto) string {
	describe := func(m *descriptorpb.DescriptorProto) map[int32]string {
		out := make(map[int32]string)
		for _, f := range m.GetField() {
			out[f.GetNumber()] = fmt.Sprintf("%s %s %s %s", f.GetLabel(), f.GetType(), f.GetTypeName(), f.GetName())
		}
		return out
	}
	a, b := describe(ours), describe(theirs)
	var diff []string
	for n, fa := range a {
		if fb := b[n]; fa != fb {
			diff = append(diff, fmt.Sprintf("\n  field %d: ours %q, grpc-go's %q", n, fa, fb))
		}
	}
	for n, fb := range b {
		if _, ok := a[n]; !ok {
			diff = append(diff, fmt.Sprintf("\n  field %d: ours missing, grpc-go's %q", n, fb))
		}
	}
	if ours.GetOptions().GetMapEntry() != theirs.GetOptions().GetMapEntry() {
		diff = append(diff, "\n  map entry differs")
	}
	sort.Strings(diff)
	return strings.Join(diff, "")
}

func enumString(e *descriptorpb.EnumDescriptorProto) string {
	var vals []string
	for _, v := range e.GetValue() {
		vals = append(vals, fmt.Sprintf("%s=%d", v.GetName(), v.GetNumber()))
	}
	return strings.Join(vals, ",")
}

func methodString(m *descriptorpb.MethodDescriptorProto) string {
	return fmt.Sprintf("(%s, client streams %v) returns (%s, server streams %v)",
		m.GetInputType(), m.GetClientStreaming(), m.GetOutputType(), m.GetServerStreaming())
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
