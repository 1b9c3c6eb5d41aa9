package course

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"klab.dev/klab/lessons"
)

// progressFile is where a student's runs and hints are remembered, under
// exercises/ (and ignored by git): `klab course` shows each lesson's state
// from its last run without running anything, and `klab course hint`
// knows which hints it has shown.
const progressFile = "exercises/.klab-progress.json"

// Progress is what the course remembers of a student's work.
type Progress struct {
	// Runs holds each lesson's last run of `klab course test`, by number.
	Runs map[string]Run `json:"runs,omitempty"`
	// Hints holds, for "NN region", the deepest hint level shown.
	Hints map[string]int `json:"hints,omitempty"`
}

// Run is the outcome of one `klab course test NN`.
type Run struct {
	// Exercise is a hash of the exercise's files when it ran: a run of
	// other code says nothing of the code there now.
	Exercise string    `json:"exercise"`
	At       time.Time `json:"at"`
	Builds   bool      `json:"builds"`
	Selected bool      `json:"selected,omitempty"` // run with -run: some tests only
	Tests    int       `json:"tests"`
	Passed   int       `json:"passed"`
	Failing  []string  `json:"failing,omitempty"`
}

func (r Run) String() string {
	switch {
	case !r.Builds:
		return "does not compile"
	case r.Selected:
		return fmt.Sprintf("%d of %d selected tests pass", r.Passed, r.Tests)
	case r.Passed == r.Tests:
		return fmt.Sprintf("passing (%d tests)", r.Tests)
	default:
		return fmt.Sprintf("%d of %d tests pass", r.Passed, r.Tests)
	}
}

// LoadProgress reads the student's progress; none yet is an empty one.
func (c *Course) LoadProgress() (*Progress, error) {
	p := &Progress{Runs: map[string]Run{}, Hints: map[string]int{}}
	b, err := os.ReadFile(filepath.Join(c.Root, progressFile))
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("%s: %w (delete it to start the record afresh)", progressFile, err)
	}
	if p.Runs == nil {
		p.Runs = map[string]Run{}
	}
	if p.Hints == nil {
		p.Hints = map[string]int{}
	}
	return p, nil
}

// SaveProgress writes p back.
func (c *Course) SaveProgress(p *Progress) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	full := filepath.Join(c.Root, progressFile)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, append(b, '\n'), 0o644)
}

// State is where a student stands on one lesson.
type State struct {
	Lesson  lessons.Lesson
	Started bool // the exercise differs from its generated stubs
	// Last is the last run of the lesson's tests, if it ran on the code
	// that is there now.
	Last *Run
}

func (s State) String() string {
	switch {
	case !s.Started:
		return "not started"
	case s.Last == nil:
		return "changed since its last run"
	default:
		return s.Last.String()
	}
}

// Status reports where the student stands on lesson l, from the exercise
// on disk and the last recorded run. It runs nothing.
func (c *Course) Status(l lessons.Lesson, p *Progress) (State, error) {
	st := State{Lesson: l}
	stubs, err := c.GenerateLesson(l, false)
	if err != nil {
		return st, err
	}
	for path, want := range stubs {
		have, err := os.ReadFile(filepath.Join(c.Root, path))
		if err != nil || !bytes.Equal(have, want) {
			st.Started = true
			break
		}
	}
	if !st.Started {
		return st, nil
	}
	hash, err := c.exerciseHash(l)
	if err != nil {
		return st, err
	}
	if r, ok := p.Runs[l.Number]; ok && r.Exercise == hash {
		st.Last = &r
	}
	return st, nil
}

// exerciseHash is a hash of the Go files of lesson l's exercise on disk.
func (c *Course) exerciseHash(l lessons.Lesson) (string, error) {
	h := sha256.New()
	dir := filepath.Join(c.Root, "exercises", l.Dir())
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".go" {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	slices.Sort(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s %d\n", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Put writes lesson l's exercise with its regions resolved: to the
// solution when solved, back to the stubs when not. A source file the
// student changed is saved beside it as NAME.go.mine first. It returns the
// files it wrote.
func (c *Course) Put(l lessons.Lesson, solved bool) ([]string, error) {
	stubs, err := c.GenerateLesson(l, false)
	if err != nil {
		return nil, err
	}
	solution, err := c.GenerateLesson(l, true)
	if err != nil {
		return nil, err
	}
	want := stubs
	if solved {
		want = solution
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
		if mine && !isTest(p) {
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

func isTest(p string) bool { return strings.HasSuffix(p, "_test.go") }

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
