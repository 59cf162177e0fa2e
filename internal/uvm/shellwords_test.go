package uvm

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitCommandLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"  /bin/ls  -l  ", []string{"/bin/ls", "-l"}, false},
		{`sh -c 'echo hi there'`, []string{"sh", "-c", "echo hi there"}, false},
		{`echo "a \"b\" \$c \x"`, []string{"echo", `a "b" $c \x`}, false},
		{`a\ b c`, []string{"a b", "c"}, false},
		{`''`, []string{""}, false},
		{`x"y"'z'`, []string{"xyz"}, false},
		{`'open`, nil, true},
		{`"open`, nil, true},
	} {
		got, err := splitCommandLine(tc.in)
		if (err != nil) != tc.err {
			t.Fatalf("%q: err %v", tc.in, err)
		}
		if !tc.err && !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("%q: got %q want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzSplitCommandLine(f *testing.F) {
	for _, s := range []string{"a b", `"x y" 'z'`, `a\ b`, `"\$"`, `'`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitCommandLine(s)
		if err != nil {
			return
		}
		// Quoting every word and splitting again gives the same words.
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := splitCommandLine(strings.Join(quoted, " "))
		if err != nil || !reflect.DeepEqual(again, words) {
			t.Fatalf("%q split to %q; re-quoted it splits to %q (%v)", s, words, again, err)
		}
	})
}
