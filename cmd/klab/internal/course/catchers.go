package course

import (
	"cmp"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// A mutant is caught as soon as one test fails, so the order its tests run
// in decides what it costs, never whether it is caught: most mutants are
// caught by one test, and running that test first spares the others. The
// check runs first the test that caught the mutant on the last run, if it
// remembers one, then the rest fastest first.

// testOrder returns tests in the order to try them on a mutant: first,
// if it is one of them, then the others by how long the solution took on
// each (took), the fastest first, in file order among equals.
func testOrder(tests []string, took map[string]time.Duration, first string) []string {
	rest := slices.DeleteFunc(slices.Clone(tests), func(t string) bool { return t == first })
	slices.SortStableFunc(rest, func(a, b string) int { return cmp.Compare(took[a], took[b]) })
	if len(rest) < len(tests) {
		return append([]string{first}, rest...)
	}
	return rest
}

// catchers remembers, from one check to the next, which test caught each
// mutant: a hint only, kept in a file of the user's cache folder, so a
// missing, stale or broken file makes the check slower, never wrong.
type catchers struct {
	file string // "" keeps nothing
	mu   sync.Mutex
	by   map[string]string // lesson and mutant name -> test
}

// loadCatchers reads the catchers remembered in file; "" or an unreadable
// file gives none.
func loadCatchers(file string) *catchers {
	c := &catchers{file: file, by: map[string]string{}}
	if b, err := os.ReadFile(file); err == nil {
		json.Unmarshal(b, &c.by) // a broken file is an empty one
	}
	return c
}

// catchersFile is where the check keeps its catchers: in the user's cache
// folder, beside Go's build cache, or nowhere if there is none.
func catchersFile() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "klab", "mutant-catchers.json")
}

func catcherKey(m Mutant) string { return m.Lesson + " " + m.Name }

func (c *catchers) get(m Mutant) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.by[catcherKey(m)]
}

func (c *catchers) set(m Mutant, test string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.by[catcherKey(m)] = test
}

// save writes the catchers to their file, through a rename so that a check
// running at the same time never reads half a file.
func (c *catchers) save() error {
	if c.file == "" {
		return nil
	}
	c.mu.Lock()
	b, err := json.MarshalIndent(c.by, "", "\t")
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.file), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(c.file), ".mutant-catchers-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.file)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
