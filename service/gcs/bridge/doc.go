// Package bridge serves the HCS bridge protocol on one connection at a time.
//
// A Bridge owns what must outlive a connection: the handler table, the
// queue of outgoing frames (responses and notifications) and the requests
// still in flight. Serve runs one connection: a single reader validates
// every header before allocating anything, handles NegotiateProtocol
// inline, and hands every other request to its handler on its own goroutine
// (or in arrival order in sequential mode); a single writer drains the
// outgoing queue so frames never interleave. When the connection breaks,
// Serve returns and the caller dials again; responses and notifications
// produced meanwhile wait in the queue and go out, in order, on the next
// connection.
package bridge
