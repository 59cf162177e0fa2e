// Command gcs is the Linux Guest Compute Service: the agent inside an LCOW
// utility VM that serves the HCS bridge protocol. This file only parses
// flags and wires the packages together.
package main
