// Package memtrim hands the gcs's freed heap back to the system after a
// burst of work. A utility VM's memory is the host's: once containers
// have come and gone, the gcs should shrink back to its idle size rather
// than keep the pages the Go runtime would otherwise return only slowly
// (or never, below its scavenging goal).
//
// A Trimmer samples the runtime's cumulative allocation counter. When at
// least MinBytes were allocated since the last trim and the last interval
// was quiet (less than QuietBytes allocated), it forces a collection and
// returns free memory to the system (runtime/debug.FreeOSMemory): at most
// one trim per burst, none while idle or busy.
package memtrim
