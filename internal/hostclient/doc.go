// Package hostclient is the host end of the bridge: what a Windows host
// (hcsshim's internal/gcs) does, written for Linux so that tests, the demo
// and tools can drive a GCS over any transport.
//
// A Client negotiates, sends typed requests shaped exactly as real hosts
// send them (json.Encoder without HTML escaping, trailing newline, request
// ids counting up from 0), matches responses by id, and delivers container
// notifications. It is as strict as the real host: a frame above 64 KiB, a
// response with an unknown id or the wrong type, or a notification other
// than a container exit is a protocol violation that ends the connection,
// and Err reports it.
package hostclient
