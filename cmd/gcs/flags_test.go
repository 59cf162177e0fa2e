package main

import (
	"flag"
	"os"
	"regexp"
	"testing"
)

// TestReadmeListsEveryFlag keeps the README's flag tables complete: each
// flag the gcs defines has a table row naming it.
func TestReadmeListsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\|([^|\\n]*)\\|")
	name := regexp.MustCompile("`-([A-Za-z0-9-]+)`")
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		for _, n := range name.FindAllStringSubmatch(m[1], -1) {
			documented[n[1]] = true
		}
	}
	newFlagSet(&options{}).VisitAll(func(f *flag.Flag) {
		if !documented[f.Name] {
			t.Errorf("README.md has no flag table row for -%s (%s)", f.Name, f.Usage)
		}
	})
}
