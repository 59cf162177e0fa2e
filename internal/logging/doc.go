// Package logging builds a process's one logger from its flags and states
// what the host expects of the JSON log stream.
//
// The gcs (and vsockexec) configure a *logrus.Logger once in main with New
// and hand *logrus.Entry values down to every package; no package logs
// through logrus's package-level (standard) logger. A nil entry in a
// package's options means "discard", via Or, never the standard logger.
//
// With the json format every line is one JSON object carrying at least
// "time" (RFC 3339), "level" (a logrus level name) and "msg": the host
// decodes the stream with a plain json.Decoder loop and stops for good at
// the first thing that is not such an object (hcsshim
// internal/vm/vmutils/gcs_logs.go). Check verifies a stream against that
// contract; the e2e and VM suites run it on every gcs log.
package logging
