package reflection_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	echov1 "github.com/h2rpc/h2rpc/proto/echo/v1"
	"github.com/h2rpc/h2rpc/rpc"
	"github.com/h2rpc/h2rpc/rpc/credentials/insecure"
	"github.com/h2rpc/h2rpc/rpc/reflection"
	reflectionpb "github.com/h2rpc/h2rpc/rpc/reflection/grpc_reflection_v1"
)

// A server registers reflection beside its services; a client (here
// h2rpc's, usually grpcurl or another tool) then lists them.
func ExampleRegister() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := rpc.NewServer()
	echov1.RegisterEchoServer(srv, echov1.Service{})
	reflection.Register(srv)
	go srv.Serve(lis)
	defer srv.Stop()

	cc, err := rpc.NewClient(lis.Addr().String(), rpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		log.Fatal(err)
	}
	err = stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		log.Fatal(err)
	}
	stream.CloseSend()
	for _, s := range resp.GetListServicesResponse().GetService() {
		fmt.Println(s.GetName())
	}
	// Output:
	// echo.v1.Echo
	// grpc.reflection.v1.ServerReflection
	// grpc.reflection.v1alpha.ServerReflection
}
