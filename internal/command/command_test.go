package command

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestCombinedOutput(t *testing.T) {
	out, err := CombinedOutput(context.Background(), nil, exec.Command("sh", "-c", "echo out; echo err >&2"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); !strings.Contains(got, "out\n") || !strings.Contains(got, "err\n") {
		t.Fatalf("output %q", got)
	}
	if _, err := CombinedOutput(context.Background(), Plain{}, exec.Command("sh", "-c", "exit 3")); err == nil {
		t.Fatal("exit 3 reported success")
	}
}

func TestPlainKilledByContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := Plain{}.Run(ctx, exec.Command("sleep", "30"))
	if err == nil || ctx.Err() == nil {
		t.Fatalf("err %v", err)
	}
}
