// Package kmsg forwards the kernel's log to the GCS log. It reads
// /dev/kmsg one record per read, parses each record (syslog priority and
// facility, sequence number, microseconds since boot, flags, text and the
// optional " KEY=value" dictionary lines) and logs the records whose
// priority is at or below a configured level.
package kmsg
