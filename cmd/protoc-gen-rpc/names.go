package main

import (
	"fmt"
	"path"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
)

// serviceNames are the Go identifiers generated for one service.
type serviceNames struct {
	service *protogen.Service
	goName  string // the service's Go name, "Echo"

	client     string // client interface, "EchoClient"
	clientImpl string // unexported client type, "echoClient"
	newClient  string // "NewEchoClient"

	server        string // server interface, "EchoServer"
	unimplemented string // "UnimplementedEchoServer"
	unsafe        string // "UnsafeEchoServer"
	register      string // "RegisterEchoServer"
	mustEmbed     string // the unexported method of the server interface

	desc string // "Echo_ServiceDesc"

	methods []methodNames
}

// methodNames are the Go identifiers generated for one method.
type methodNames struct {
	method *protogen.Method
	// goName is the method's name in the client and server interfaces:
	// protogen's Go name, made unique within the service.
	goName     string
	fullMethod string // constant of the full method name, "Echo_Unary_FullMethodName"
	handler    string // server handler function, "_Echo_Unary_Handler"

	// For streaming methods only: the aliases of the typed streams and
	// the index of the method's StreamDesc in the ServiceDesc.
	clientStream string // "Echo_ChatClient"
	serverStream string // "Echo_ChatServer"
	streamIndex  int
}

func (m methodNames) streaming() bool {
	return m.method.Desc.IsStreamingClient() || m.method.Desc.IsStreamingServer()
}

func newServiceNames(s *protogen.Service) serviceNames {
	n := s.GoName
	sn := serviceNames{
		service:       s,
		goName:        n,
		client:        n + "Client",
		clientImpl:    unexport(n) + "Client",
		newClient:     "New" + n + "Client",
		server:        n + "Server",
		unimplemented: "Unimplemented" + n + "Server",
		unsafe:        "Unsafe" + n + "Server",
		register:      "Register" + n + "Server",
		mustEmbed:     "mustEmbedUnimplemented" + n + "Server",
		desc:          n + "_ServiceDesc",
	}
	// protogen's Go names of two methods can be equal ("get_item" and
	// "GetItem" are both GetItem). Like protogen does for fields, the
	// later method gets a "_" appended until its name is free. The
	// unexported methods of the server interface cannot collide: Go names
	// of methods always begin with an upper-case letter.
	used := make(map[string]bool)
	streams := 0
	for _, m := range s.Methods {
		goName := m.GoName
		for used[goName] {
			goName += "_"
		}
		used[goName] = true
		mn := methodNames{
			method:     m,
			goName:     goName,
			fullMethod: n + "_" + goName + "_FullMethodName",
			handler:    "_" + n + "_" + goName + "_Handler",
		}
		if mn.streaming() {
			mn.clientStream = n + "_" + goName + "Client"
			mn.serverStream = n + "_" + goName + "Server"
			mn.streamIndex = streams
			streams++
		}
		sn.methods = append(sn.methods, mn)
	}
	return sn
}

// declared lists the package-level identifiers generated for the service.
func (sn serviceNames) declared() []string {
	names := []string{sn.client, sn.clientImpl, sn.newClient, sn.server,
		sn.unimplemented, sn.unsafe, sn.register, sn.desc}
	for _, m := range sn.methods {
		names = append(names, m.fullMethod, m.handler)
		if m.streaming() {
			names = append(names, m.clientStream, m.serverStream)
		}
	}
	return names
}

// unexport lower-cases the first letter of s.
func unexport(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// checkNames returns an error when an identifier generated for the services
// of f is declared twice in f's Go package: by protoc-gen-go for a
// message, enum, enum value, oneof wrapper or extension of a file of the
// package, or by this plugin for another service. Generating such code
// would only move the error to the Go compiler, further from its cause.
//
// Only the files protoc passes to the plugin are known, so a clash with a
// file of the same Go package that is neither generated now nor imported
// goes undetected.
func checkNames(gen *protogen.Plugin, f *protogen.File, services []serviceNames) error {
	owners := make(map[string]string)
	for _, other := range gen.Files {
		if other.GoImportPath != f.GoImportPath {
			continue
		}
		declareProtocGenGo(owners, other)
		if other == f {
			continue
		}
		for _, s := range other.Services {
			owner := fmt.Sprintf("the code generated for service %s in %s", s.Desc.FullName(), other.Desc.Path())
			for _, name := range newServiceNames(s).declared() {
				owners[name] = owner
			}
		}
	}
	for _, sn := range services {
		owner := fmt.Sprintf("the code generated for service %s", sn.service.Desc.FullName())
		for _, name := range sn.declared() {
			if prev, ok := owners[name]; ok {
				return fmt.Errorf("%s: service %s: generated identifier %s is also declared by %s, in the same Go package %s; "+
					"rename one of them, or put them in different Go packages (go_package)",
					f.Desc.Path(), sn.service.Desc.FullName(), name, prev, f.GoImportPath)
			}
			owners[name] = owner
		}
	}
	return nil
}

// declareProtocGenGo records the package-level identifiers protoc-gen-go
// declares for f.
func declareProtocGenGo(owners map[string]string, f *protogen.File) {
	in := " in " + f.Desc.Path()
	owners[f.GoDescriptorIdent.GoName] = "the file descriptor of" + in
	declareEnums := func(enums []*protogen.Enum) {
		for _, e := range enums {
			owner := fmt.Sprintf("enum %s%s", e.Desc.FullName(), in)
			owners[e.GoIdent.GoName] = owner
			owners[e.GoIdent.GoName+"_name"] = owner
			owners[e.GoIdent.GoName+"_value"] = owner
			for _, v := range e.Values {
				owner := fmt.Sprintf("enum value %s%s", v.Desc.FullName(), in)
				owners[v.GoIdent.GoName] = owner
				if v.PrefixedAlias.GoName != "" {
					owners[v.PrefixedAlias.GoName] = owner
				}
			}
		}
	}
	declareExtensions := func(exts []*protogen.Extension) {
		for _, x := range exts {
			owners["E_"+x.GoIdent.GoName] = fmt.Sprintf("extension %s%s", x.Desc.FullName(), in)
		}
	}
	var declareMessages func([]*protogen.Message)
	declareMessages = func(msgs []*protogen.Message) {
		for _, m := range msgs {
			if m.Desc.IsMapEntry() {
				continue
			}
			owners[m.GoIdent.GoName] = fmt.Sprintf("message %s%s", m.Desc.FullName(), in)
			for _, o := range m.Oneofs {
				if o.Desc.IsSynthetic() {
					continue
				}
				for _, field := range o.Fields {
					owners[field.GoIdent.GoName] = fmt.Sprintf("the oneof wrapper of field %s%s", field.Desc.FullName(), in)
				}
			}
			declareEnums(m.Enums)
			declareExtensions(m.Extensions)
			declareMessages(m.Messages)
		}
	}
	declareEnums(f.Enums)
	declareExtensions(f.Extensions)
	declareMessages(f.Messages)
}

// locals are the names of receivers, parameters and variables in the
// bodies of generated functions.
//
// A body also names imported packages, and protogen names an import after
// the last element of its path: messages of a package at ".../stream" are
// stream.Foo, which a variable called stream would hide. So a local whose
// name is also the last element of an import path of the file gets "_"
// appended. The packages every file imports (context, errors, io, rpc,
// codes, status) have names no local uses.
type locals struct {
	c, ctx, in, out, opts, cOpts, err, stream, x string
	srv, dec, interceptor, info, handler, req, m string
	s, t, ok                                     string
}

func newLocals(f *protogen.File) locals {
	reserved := make(map[string]bool)
	for _, s := range f.Services {
		for _, m := range s.Methods {
			for _, id := range []protogen.GoIdent{m.Input.GoIdent, m.Output.GoIdent} {
				if id.GoImportPath != f.GoImportPath {
					reserved[path.Base(string(id.GoImportPath))] = true
				}
			}
		}
	}
	name := func(n string) string {
		for reserved[n] {
			n += "_"
		}
		return n
	}
	return locals{
		c: name("c"), ctx: name("ctx"), in: name("in"), out: name("out"),
		opts: name("opts"), cOpts: name("cOpts"), err: name("err"),
		stream: name("stream"), x: name("x"),
		srv: name("srv"), dec: name("dec"), interceptor: name("interceptor"),
		info: name("info"), handler: name("handler"), req: name("req"), m: name("m"),
		s: name("s"), t: name("t"), ok: name("ok"),
	}
}
