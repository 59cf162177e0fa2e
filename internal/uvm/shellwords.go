package uvm

import (
	"errors"
	"strings"
)

// errUnterminatedQuote is returned for a command line whose quote never
// closes.
var errUnterminatedQuote = errors.New("unterminated quote in command line")

// splitCommandLine splits s into words with POSIX shell quoting rules:
// blanks separate words, single quotes keep everything literally, double
// quotes keep everything but backslash escapes of $ ` " \ and newline, and
// a backslash outside quotes escapes the next character. No expansion.
func splitCommandLine(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		i       int
		runes   = []rune(s)
		advance = func() rune { r := runes[i]; i++; return r }
	)
	for i < len(runes) {
		r := advance()
		switch {
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '\\':
			inWord = true
			if i < len(runes) {
				if n := advance(); n != '\n' {
					cur.WriteRune(n)
				}
			}
		case r == '\'':
			inWord = true
			closed := false
			for i < len(runes) {
				n := advance()
				if n == '\'' {
					closed = true
					break
				}
				cur.WriteRune(n)
			}
			if !closed {
				return nil, errUnterminatedQuote
			}
		case r == '"':
			inWord = true
			closed := false
			for i < len(runes) {
				n := advance()
				if n == '"' {
					closed = true
					break
				}
				if n == '\\' && i < len(runes) {
					switch runes[i] {
					case '$', '`', '"', '\\':
						n = advance()
					case '\n':
						advance()
						continue
					}
				}
				cur.WriteRune(n)
			}
			if !closed {
				return nil, errUnterminatedQuote
			}
		default:
			inWord = true
			cur.WriteRune(r)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
