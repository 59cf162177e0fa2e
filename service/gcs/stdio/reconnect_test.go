package stdio

import (
	"bytes"
	"testing"
)

func TestReplayRingKeepsTheLatestBytes(t *testing.T) {
	r := newReplayRing()
	if got := r.bytes(); len(got) != 0 {
		t.Fatalf("empty ring gave %d bytes", len(got))
	}
	r.write([]byte("hello "))
	r.write([]byte("world"))
	if got := string(r.bytes()); got != "hello world" {
		t.Fatalf("got %q", got)
	}
	// Wrap around several times with chunks of odd sizes.
	var all bytes.Buffer
	all.WriteString("hello world")
	for i := 0; i < 3000; i++ {
		chunk := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i%333)
		r.write(chunk)
		all.Write(chunk)
	}
	want := all.Bytes()[all.Len()-replaySize:]
	if got := r.bytes(); !bytes.Equal(got, want) {
		t.Fatalf("ring holds %d bytes, not the last %d written", len(got), replaySize)
	}
	big := bytes.Repeat([]byte("xyz"), replaySize)
	r.write(big)
	if got := r.bytes(); !bytes.Equal(got, big[len(big)-replaySize:]) {
		t.Fatal("a write larger than the ring must leave its tail")
	}
}
