// Command protoc-gen-rpc is a protoc plugin that writes h2rpc client and
// server code for the services of .proto files: one <name>_rpc.pb.go next
// to the <name>.pb.go that protoc-gen-go writes for the messages.
//
// Install it with
//
//	go install github.com/h2rpc/h2rpc/cmd/protoc-gen-rpc@latest
//
// and run it with protoc-gen-go:
//
//	protoc --go_out=. --go_opt=paths=source_relative \
//	    --rpc_out=. --rpc_opt=paths=source_relative \
//	    echo/v1/echo.proto
//
// The plugin takes protogen's standard parameters: paths=import (the
// default) or paths=source_relative, module=<prefix>, annotate_code and
// M<file>=<go import path>.
//
// For each service Foo of a file it writes:
//
//   - the full method names as constants, Foo_Bar_FullMethodName;
//   - FooClient, the client interface, and NewFooClient, which makes one on
//     an rpc.ClientConnInterface;
//   - FooServer, the server interface, UnimplementedFooServer, which
//     implementations embed by value, UnsafeFooServer, and
//     RegisterFooServer;
//   - Foo_ServiceDesc, the rpc.ServiceDesc;
//   - Foo_BarClient and Foo_BarServer, aliases of the typed stream
//     interfaces of package rpc, for each streaming method Bar.
package main

import (
	"flag"
	"fmt"
	"os"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// version is the plugin's version, printed by --version and written into
// the header of generated files. It is a constant, not the module version
// from the build info, so that output does not depend on how the plugin
// was built.
const version = "0.1.0"

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "-version") {
		fmt.Printf("protoc-gen-rpc v%s\n", version)
		return
	}
	if len(os.Args) > 1 {
		fmt.Fprintf(os.Stderr, "protoc-gen-rpc: unexpected argument %q\n", os.Args[1])
		fmt.Fprintln(os.Stderr, "protoc-gen-rpc is a protoc plugin: run it through protoc with --rpc_out, or with --version")
		os.Exit(2)
	}

	// The plugin has no parameters of its own; a FlagSet without flags
	// turns a misspelt parameter into an error instead of ignoring it.
	var params flag.FlagSet
	protogen.Options{ParamFunc: params.Set}.Run(func(gen *protogen.Plugin) error {
		gen.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL |
			pluginpb.CodeGeneratorResponse_FEATURE_SUPPORTS_EDITIONS)
		gen.SupportedEditionsMinimum = descriptorpb.Edition_EDITION_PROTO2
		gen.SupportedEditionsMaximum = descriptorpb.Edition_EDITION_2024
		for _, f := range gen.Files {
			if !f.Generate || len(f.Services) == 0 {
				continue
			}
			if err := generateFile(gen, f); err != nil {
				return err
			}
		}
		return nil
	})
}
