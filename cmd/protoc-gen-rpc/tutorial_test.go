package main

// The README's tutorial, run as written: its files and its generate
// command are taken from README.md itself, so the tutorial cannot drift
// from what works.

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tutorial is what README.md's tutorial section holds, found by the HTML
// comments placed before its code blocks.
type tutorial struct {
	files  map[string]string // <!-- tutorial-file: PATH --> blocks
	script string            // the <!-- tutorial-run --> block
	output string            // the <!-- tutorial-output --> block
}

// readTutorial parses the marked code blocks of README.md.
func readTutorial(t *testing.T) tutorial {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	tut := tutorial{files: map[string]string{}}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, "<!-- tutorial-") || !strings.HasSuffix(line, "-->") {
			continue
		}
		marker := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "<!--"), "-->"))
		// The next line opens a fenced block; collect until it closes.
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			t.Fatalf("README.md line %d: %q is not followed by a code block", i+1, line)
		}
		var body strings.Builder
		j := i + 2
		for ; j < len(lines) && !strings.HasPrefix(lines[j], "```"); j++ {
			body.WriteString(lines[j])
			body.WriteByte('\n')
		}
		if j == len(lines) {
			t.Fatalf("README.md line %d: unclosed code block", i+2)
		}
		i = j
		switch {
		case strings.HasPrefix(marker, "tutorial-file:"):
			tut.files[strings.TrimSpace(strings.TrimPrefix(marker, "tutorial-file:"))] = body.String()
		case marker == "tutorial-run":
			tut.script += body.String()
		case marker == "tutorial-output":
			tut.output += body.String()
		default:
			t.Fatalf("README.md line %d: unknown marker %q", i+1, marker)
		}
	}
	for _, want := range []string{"proto/greet/v1/greet.proto", "server/main.go", "client/main.go"} {
		if _, ok := tut.files[want]; !ok {
			t.Fatalf("README.md's tutorial has no block marked tutorial-file: %s", want)
		}
	}
	if tut.script == "" || tut.output == "" {
		t.Fatal("README.md's tutorial has no tutorial-run or tutorial-output block")
	}
	return tut
}

// TestREADMETutorial does what the README's tutorial says in a new module
// that points at this repository with a replace directive, as the tutorial
// does before h2rpc is published: generate, build, start the server on a
// free loopback port, run the client, and compare its output with the
// README's.
func TestREADMETutorial(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module: not in -short")
	}
	tut := readTutorial(t)
	pluginDir := buildPlugins(t)
	protoc := protocPath(t)
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		// The plugins built for this test and protoc come first in PATH,
		// as `go install` and apt would put them.
		cmd.Env = append(os.Environ(), "PATH="+pluginDir+string(os.PathListSeparator)+
			filepath.Dir(protoc)+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("go", "mod", "init", "example.com/greet")
	run("go", "mod", "edit", "-replace", "github.com/h2rpc/h2rpc="+repo)
	for name, body := range tut.files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run("bash", "-euo", "pipefail", "-c", tut.script)
	run("go", "build", "-o", filepath.Join(dir, "bin")+string(filepath.Separator), "./server", "./client")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	server := exec.CommandContext(ctx, filepath.Join(dir, "bin", "server"), "-addr", "127.0.0.1:0")
	stdout, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var serverErr bytes.Buffer
	server.Stderr = &serverErr
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		server.Process.Kill()
		server.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("the server printed nothing: %v\n%s", sc.Err(), serverErr.String())
	}
	addr, ok := strings.CutPrefix(sc.Text(), "listening on ")
	if !ok {
		t.Fatalf("the server printed %q, want \"listening on ADDR\"", sc.Text())
	}
	client := exec.CommandContext(ctx, filepath.Join(dir, "bin", "client"), "-addr", addr)
	got, err := client.CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, got)
	}
	if string(got) != tut.output {
		t.Errorf("the client printed:\n%s\nREADME.md says:\n%s", got, tut.output)
	}
}
