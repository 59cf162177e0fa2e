package logging_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opengcs/opengcs/internal/testutil"
)

const module = "github.com/opengcs/opengcs"

// globalLogrus are logrus's package-level functions that log through, or
// reconfigure, its standard logger.
var globalLogrus = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`StandardLogger SetOutput SetFormatter SetLevel GetLevel
		IsLevelEnabled AddHook SetReportCaller SetBufferPool Exit RegisterExitHandler DeferExitHandler
		Writer WriterLevel WithError WithContext WithField WithFields WithTime`) {
		globalLogrus[n] = true
	}
	for _, lvl := range []string{"Trace", "Debug", "Info", "Print", "Warn", "Warning", "Error", "Fatal", "Panic", "Log"} {
		for _, suffix := range []string{"", "f", "ln", "Fn"} {
			globalLogrus[lvl+suffix] = true
		}
	}
}

// TestNoGlobalLogger fails on any use of logrus's standard logger, of the
// standard library's log and log/slog packages (whose default loggers
// write plain text on stderr), and of the print/println built-ins, in the
// module's non-test Go files. Every package logs through the entry its
// caller gives it (docs/architecture.md, "Logging").
func TestNoGlobalLogger(t *testing.T) {
	root := repoRoot(t)
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin" || d.Name() == "out" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, msg := range globalLoggerUses(fset, f) {
			// The gcs's main may take hold of the standard logger to
			// forward what hcsshim's security-policy code logs through it.
			if rel == filepath.Join("cmd", "gcs", "main.go") && strings.HasSuffix(msg, ": logrus.StandardLogger uses the standard logger") {
				continue
			}
			t.Errorf("%s:%s", rel, msg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNoRawStderr fails when a package built into the gcs or vsockexec
// names os.Stderr or os.Stdout outside the few places that own them: the
// gcs's main (the logger's output, the -use-inouterr bridge, -help),
// vsockexec (its program's streams) and this package (the logger's
// default output). Anything else written there would bypass the logger
// and break the host's JSON stream.
func TestNoRawStderr(t *testing.T) {
	root := repoRoot(t)
	allowed := map[string]bool{
		"cmd/gcs":            true,
		"internal/vsockexec": true,
		"internal/logging":   true,
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \" \"}}", "./cmd/gcs", "./cmd/vsockexec")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 || (f[0] != module && !strings.HasPrefix(f[0], module+"/")) {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
		if allowed[rel] {
			continue
		}
		checked++
		for _, name := range strings.Fields(f[2]) {
			p := filepath.Join(f[1], name)
			file, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			os := importName(file, "os")
			if os == "" {
				continue
			}
			ast.Inspect(file, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if id, ok := sel.X.(*ast.Ident); ok && id.Name == os && (sel.Sel.Name == "Stderr" || sel.Sel.Name == "Stdout") {
						r, _ := filepath.Rel(root, p)
						t.Errorf("%s:%d: os.%s in a package of the gcs", r, fset.Position(sel.Pos()).Line, sel.Sel.Name)
					}
				}
				return true
			})
		}
	}
	if checked < 10 {
		t.Fatalf("only %d packages checked; go list output:\n%s", checked, out)
	}
}

// globalLoggerUses returns "line: what" for each forbidden use in f.
func globalLoggerUses(fset *token.FileSet, f *ast.File) []string {
	var found []string
	logrus := importName(f, "github.com/sirupsen/logrus")
	stdlog, slog := importName(f, "log"), importName(f, "log/slog")
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			if !ok {
				return true
			}
			line := fset.Position(n.Pos()).Line
			switch {
			case logrus != "" && id.Name == logrus && globalLogrus[n.Sel.Name]:
				found = append(found, fmt.Sprintf("%d: logrus.%s uses the standard logger", line, n.Sel.Name))
			case stdlog != "" && id.Name == stdlog && n.Sel.Name != "SetOutput" && n.Sel.Name != "SetFlags":
				// Only redirecting the standard library's logger is allowed.
				found = append(found, fmt.Sprintf("%d: log.%s writes plain text", line, n.Sel.Name))
			case slog != "" && id.Name == slog:
				found = append(found, fmt.Sprintf("%d: slog.%s is a second logger", line, n.Sel.Name))
			}
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); ok && (id.Name == "print" || id.Name == "println") {
				found = append(found, fmt.Sprintf("%d: built-in %s writes to stderr", fset.Position(n.Pos()).Line, id.Name))
			}
		}
		return true
	})
	return found
}

// importName is the name f uses for the package at path, "" if f does not
// import it.
func importName(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p != path {
			continue
		}
		if imp.Name != nil {
			return imp.Name.Name
		}
		return path[strings.LastIndex(path, "/")+1:]
	}
	return ""
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestGuardFindsGlobalUses keeps the checker honest on a sample file.
func TestGuardFindsGlobalUses(t *testing.T) {
	src := `package p

import (
	"log"
	lr "github.com/sirupsen/logrus"
)

func f(e *lr.Entry) {
	lr.WithField("a", 1).Info("x")
	lr.NewEntry(lr.StandardLogger()).Info("y")
	lr.Infof("z")
	log.Print("w")
	println("v")
	e.WithField("fine", 1).Info("fine")
	_ = lr.New()
	_ = lr.Fields{}
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	got := globalLoggerUses(fset, f)
	if len(got) != 5 {
		t.Fatalf("found %d uses, want 5: %q", len(got), got)
	}
}
