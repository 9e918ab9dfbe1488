package rpc

// Hooks for the external tests of package rpc (package rpc_test).

// NewHealthCheckRequestForTest is newHealthCheckRequest, the client-side
// health check's grpc.health.v1.HealthCheckRequest.
var NewHealthCheckRequestForTest = newHealthCheckRequest

// HealthCheckResponseForTest is the type the client-side health check
// receives a grpc.health.v1.HealthCheckResponse into.
type HealthCheckResponseForTest = healthCheckResponse
