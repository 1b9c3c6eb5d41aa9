package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// restartCommand is how to run this klab binary again from a shell in the
// current directory. `go run` builds its binary in a temporary go-build
// directory and deletes it when it exits, so printing the path of a binary
// that go run built would name a file that will not exist: for it, the
// command is go run again, of this module's cmd/klab.
func restartCommand(self string) string {
	if !builtByGoRun(self) {
		return shellQuote(self)
	}
	wd, err := os.Getwd()
	if err != nil {
		return shellQuote(self)
	}
	root, ok := moduleRoot(wd)
	if !ok {
		return shellQuote(self)
	}
	rel, err := filepath.Rel(wd, filepath.Join(root, "cmd", "klab"))
	if err != nil {
		return shellQuote(self)
	}
	rel = filepath.ToSlash(rel)
	if rel != "." && !strings.HasPrefix(rel, "../") {
		rel = "./" + rel // go run reads "cmd/klab" as an import path, "./cmd/klab" as a directory
	}
	return "go run " + shellQuote(rel)
}

// builtByGoRun reports whether a binary is one go run built: it lives in
// $GOTMPDIR/go-buildNNN/bNNN/exe/.
func builtByGoRun(path string) bool {
	dir := filepath.Dir(path)
	if filepath.Base(dir) != "exe" {
		return false
	}
	for d := filepath.Dir(dir); d != filepath.Dir(d); d = filepath.Dir(d) {
		if strings.HasPrefix(filepath.Base(d), "go-build") {
			return true
		}
	}
	return false
}

// moduleRoot finds the directory of klab's go.mod at dir or above it.
func moduleRoot(dir string) (string, bool) {
	for {
		if isKlabModule(filepath.Join(dir, "go.mod")) {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// isKlabModule reports whether a go.mod file declares module klab.dev/klab.
func isKlabModule(goMod string) bool {
	f, err := os.Open(goMod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.TrimSpace(name) == "klab.dev/klab"
		}
	}
	return false
}

// shellJoin joins arguments into a command line a POSIX shell reads back
// as the same arguments.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

// shellQuote quotes an argument for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:,=@+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
