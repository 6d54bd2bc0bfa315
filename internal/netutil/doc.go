// Package netutil holds the socket address conversions that probe and
// trace share (netip.AddrPort to and from the x/sys/unix socket address
// types, one copy for both families) and the host-name syntax check that
// the command line and the exporter's configuration share.
//
// It is a leaf: it imports nothing of anycheck and keeps no state.
package netutil
