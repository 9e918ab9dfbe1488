// Package netfault tests h2rpc across a network that fails: two network
// namespaces joined by a user-space link whose delay, rate, loss and
// partition each test controls, with the server in a separate process
// so that it can be killed. The package has only tests; they need root
// (network namespaces and /dev/net/tun) and Linux, and skip elsewhere
// with the reason printed.
//
// The link is a relay in the test process between two TUN devices, one
// in each namespace: this kernel may lack the netem qdisc, and a relay
// needs nothing but TUN. Nothing is routed outside the namespaces.
package netfault
