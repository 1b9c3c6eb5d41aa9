package course

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"klab.dev/klab/lessons"
)

// State is where a student stands on one lesson.
type State struct {
	Lesson  lessons.Lesson
	Started bool // the exercise differs from its generated stubs
	Builds  bool
	Tests   int // top-level tests run
	Failed  int
	Output  string // go test's output when it does not build
}

func (s State) String() string {
	switch {
	case !s.Started:
		return "not started"
	case !s.Builds:
		return "does not compile"
	case s.Failed > 0:
		return fmt.Sprintf("failing %d of %d tests", s.Failed, s.Tests)
	default:
		return fmt.Sprintf("passing (%d tests)", s.Tests)
	}
}

// Status reports the state of lesson l's exercise. An exercise that is
// still exactly as generated is not started and its tests are not run.
func (c *Course) Status(l lessons.Lesson) (State, error) {
	st := State{Lesson: l}
	stubs, err := c.GenerateLesson(l, "exercises", l.Number)
	if err != nil {
		return st, err
	}
	for p, want := range stubs {
		have, err := os.ReadFile(filepath.Join(c.Root, p))
		if err != nil || !bytes.Equal(have, want) {
			st.Started = true
			break
		}
	}
	if !st.Started {
		return st, nil
	}
	cmd := exec.Command("go", "test", "-count=1", "-json", "./"+l.Dir()+"/...")
	cmd.Dir = filepath.Join(c.Root, "exercises")
	out, _ := cmd.CombinedOutput()
	st.Builds = true
	var text strings.Builder
	for _, line := range bytes.Split(out, []byte("\n")) {
		var ev struct{ Action, Test, Output string }
		if json.Unmarshal(line, &ev) != nil {
			text.Write(line)
			text.WriteByte('\n')
			continue
		}
		text.WriteString(ev.Output)
		if ev.Test == "" || strings.Contains(ev.Test, "/") {
			if ev.Action == "fail" && ev.Test == "" && st.Tests == 0 {
				st.Builds = false
			}
			continue
		}
		switch ev.Action {
		case "pass":
			st.Tests++
		case "fail":
			st.Tests++
			st.Failed++
		}
	}
	if !st.Builds {
		st.Output = text.String()
	}
	return st, nil
}

// Test runs lesson l's exercise tests with go test's output on w, and after
// a failure prints the lesson's hints. It reports whether they passed.
func (c *Course) Test(l lessons.Lesson, w io.Writer, args ...string) (bool, error) {
	cmd := exec.Command("go", append([]string{"test", "-count=1"}, append(args, "./"+l.Dir()+"/...")...)...)
	cmd.Dir = filepath.Join(c.Root, "exercises")
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			return false, err
		}
		fmt.Fprintf(w, "\nLesson %s is not done yet.\n", l.Number)
		if hints := Hints(filepath.Join(c.Root, l.README())); hints != "" {
			fmt.Fprintf(w, "\nHints from the lesson:\n\n%s\n", hints)
		}
		fmt.Fprintf(w, "\nRead the lesson: %s\n", l.README())
		return false, nil
	}
	fmt.Fprintf(w, "\nLesson %s passes. On to the next one: go run ./cmd/klab course\n", l.Number)
	return true, nil
}

var heading = regexp.MustCompile(`^#{1,2} `)

// Hints returns the "## Hints" section of a lesson README.
func Hints(readme string) string {
	f, err := os.Open(readme)
	if err != nil {
		return ""
	}
	defer f.Close()
	var b strings.Builder
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if heading.MatchString(line) {
			if in {
				break
			}
			in = strings.EqualFold(strings.TrimSpace(strings.TrimLeft(line, "#")), "hints")
			continue
		}
		if in {
			b.WriteString(line + "\n")
		}
	}
	return strings.TrimSpace(b.String())
}

// Put writes lesson l's exercise with its regions resolved: to the
// solution when solved, back to the stubs when not. A source file the
// student changed is saved beside it as NAME.go.mine first. It returns the
// files it wrote.
func (c *Course) Put(l lessons.Lesson, solved bool) ([]string, error) {
	stubs, err := c.GenerateLesson(l, "exercises", l.Number)
	if err != nil {
		return nil, err
	}
	want := stubs
	if solved {
		if want, err = c.GenerateLesson(l, "exercises", ""); err != nil {
			return nil, err
		}
	}
	solution, err := c.GenerateLesson(l, "exercises", "")
	if err != nil {
		return nil, err
	}
	var wrote []string
	for p, b := range want {
		full := filepath.Join(c.Root, p)
		have, err := os.ReadFile(full)
		if err == nil && bytes.Equal(have, b) {
			continue
		}
		// The student's own work, neither stubs nor solution, is kept.
		mine := err == nil && !bytes.Equal(have, stubs[p]) && !bytes.Equal(have, solution[p])
		if mine && !strings.HasSuffix(p, "_test.go") {
			backup := freeName(full + ".mine")
			if err := os.WriteFile(backup, have, 0o644); err != nil {
				return wrote, err
			}
			rel, _ := filepath.Rel(c.Root, backup)
			wrote = append(wrote, filepath.ToSlash(rel))
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return wrote, err
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return wrote, err
		}
		wrote = append(wrote, p)
	}
	return wrote, nil
}

// freeName returns path, or path.1, path.2, ... whichever does not exist
// yet: a backup never overwrites an earlier one.
func freeName(path string) string {
	name := path
	for i := 1; ; i++ {
		if _, err := os.Stat(name); errors.Is(err, os.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s.%d", path, i)
	}
}
