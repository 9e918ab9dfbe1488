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
// M<file>=<go import path>. It also takes protoc-gen-go-grpc's, so that
// existing protoc invocations and buf.gen.yaml files keep working:
//
//   - require_unimplemented_servers=true (the default) puts the
//     mustEmbedUnimplementedFooServer method in FooServer, so every
//     implementation embeds UnimplementedFooServer; with false FooServer
//     has only the service's methods, and UnimplementedFooServer and
//     UnsafeFooServer are still generated.
//   - use_generic_streams_experimental=true (the default) or false: the
//     plugin always writes the generic stream types of package rpc, and
//     with either value also the per-method names Foo_BarClient and
//     Foo_BarServer, as aliases with the methods (Send, Recv,
//     CloseAndRecv, SendAndClose, ...) of the interfaces
//     protoc-gen-go-grpc writes for false; code written against either
//     output compiles.
//
// Any other parameter is an error.
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

	// protogen handles its standard parameters and passes the others to
	// the FlagSet, which turns a misspelt one into an error instead of
	// ignoring it.
	var params flag.FlagSet
	var opts genOptions
	params.BoolVar(&opts.requireUnimplemented, "require_unimplemented_servers", true,
		"put mustEmbedUnimplemented<Service>Server in the server interface")
	params.Bool("use_generic_streams_experimental", true,
		"accepted for protoc-gen-go-grpc compatibility: streams are generic, with per-method aliases, either way")
	protogen.Options{ParamFunc: func(name, value string) error {
		if params.Lookup(name) == nil {
			return fmt.Errorf("unknown parameter %q (protoc-gen-rpc takes protogen's paths, module, M and annotate_code, "+
				"and require_unimplemented_servers and use_generic_streams_experimental)", name)
		}
		if err := params.Set(name, value); err != nil {
			return fmt.Errorf("parameter %s=%q: want true or false", name, value)
		}
		return nil
	}}.Run(func(gen *protogen.Plugin) error {
		gen.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL |
			pluginpb.CodeGeneratorResponse_FEATURE_SUPPORTS_EDITIONS)
		gen.SupportedEditionsMinimum = descriptorpb.Edition_EDITION_PROTO2
		gen.SupportedEditionsMaximum = descriptorpb.Edition_EDITION_2024
		for _, f := range gen.Files {
			if !f.Generate || len(f.Services) == 0 {
				continue
			}
			if err := generateFile(gen, f, opts); err != nil {
				return err
			}
		}
		return nil
	})
}
