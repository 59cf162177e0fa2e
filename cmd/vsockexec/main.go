package main

import (
	"os"
	"time"

	"github.com/opengcs/opengcs/internal/vsockexec"
)

func main() {
	os.Exit(vsockexec.Main(os.Args[1:], 100*time.Millisecond))
}
