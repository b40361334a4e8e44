package blockllm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RunFile is the file in a run directory that records which run owns it.
const RunFile = "run.json"

// lockFile is the file a run holds an exclusive lock on while it uses the directory.
const lockFile = ".lock"

// RunInfo records what a run is: the command and the settings that define it (the
// flags whose change would make it another run). It is written to RunFile.
type RunInfo struct {
	Command  string            `json:"command"`
	Settings map[string]string `json:"settings"`
	Created  string            `json:"created"`
	Host     string            `json:"host,omitempty"`
}

// RunMode says how OpenRunDir treats a directory that already holds a run.
type RunMode int

const (
	// NewRun refuses a directory that holds another run (its RunFile, or checkpoints
	// and models without one).
	NewRun RunMode = iota
	// ResumeRun continues the run the directory holds (a directory without one is
	// started afresh).
	ResumeRun
	// OverwriteRun deletes what the directory holds and starts afresh.
	OverwriteRun
)

// RunDir is an output directory owned by one run: locked (an exclusive flock on
// DIR/.lock, released when the process ends, even by a kill) so that two runs never
// write into it at once, and labelled by RunFile so that a second run neither writes
// over the first by accident nor resumes it by mistake.
type RunDir struct {
	Dir  string
	Info RunInfo
	lock *os.File
}

// OpenRunDir creates (when needed) and locks dir for a run described by info. A
// directory in use by another process is refused with that process's id. With NewRun,
// a directory that holds another run is refused with what it holds and how to go on;
// with OverwriteRun its contents are deleted first; with ResumeRun the recorded run is
// kept (the trainer compares the checkpoint's settings itself). Close releases the lock.
func OpenRunDir(dir string, info RunInfo, mode RunMode) (*RunDir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("blockllm: output directory: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("blockllm: output directory %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, lockFile))
		lf.Close()
		holder := strings.TrimSpace(string(b))
		if holder == "" {
			holder = "another process"
		}
		return nil, fmt.Errorf("blockllm: output directory %s is in use by %s; wait for it to finish or choose another directory", dir, holder)
	}
	host, _ := os.Hostname()
	_ = lf.Truncate(0)
	_, _ = lf.WriteAt([]byte(fmt.Sprintf("process %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))), 0)
	r := &RunDir{Dir: dir, lock: lf}
	fail := func(err error) (*RunDir, error) {
		r.Close()
		return nil, err
	}
	old, err := readRunInfo(dir)
	if err != nil {
		return fail(err)
	}
	held, err := heldEntries(dir)
	if err != nil {
		return fail(err)
	}
	switch mode {
	case NewRun:
		if old != nil || len(held) > 0 {
			what := "files of an earlier run (" + strings.Join(held, ", ") + ")"
			if old != nil {
				what = fmt.Sprintf("the %s run started %s%s", old.Command, old.Created, describeSettings(old.Settings))
			}
			return fail(fmt.Errorf("blockllm: output directory %s holds %s; pass --resume latest to continue it, "+
				"--overwrite to delete it and start afresh, or choose another directory", dir, what))
		}
	case OverwriteRun:
		for _, e := range held {
			if err := os.RemoveAll(filepath.Join(dir, e)); err != nil {
				return fail(fmt.Errorf("blockllm: --overwrite: %w", err))
			}
		}
		old = nil
	case ResumeRun:
	}
	if old != nil {
		r.Info = *old
		return r, nil
	}
	info.Created = time.Now().UTC().Format(time.RFC3339)
	info.Host = host
	b, err := json.MarshalIndent(info, "", " ")
	if err != nil {
		return fail(err)
	}
	if err := writeAtomic(filepath.Join(dir, RunFile), append(b, '\n')); err != nil {
		return fail(err)
	}
	r.Info = info
	return r, nil
}

// Close releases the directory's lock.
func (r *RunDir) Close() error {
	if r == nil || r.lock == nil {
		return nil
	}
	_ = syscall.Flock(int(r.lock.Fd()), syscall.LOCK_UN)
	err := r.lock.Close()
	r.lock = nil
	return err
}

func readRunInfo(dir string) (*RunInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, RunFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blockllm: %w", err)
	}
	var ri RunInfo
	if err := json.Unmarshal(b, &ri); err != nil {
		return nil, fmt.Errorf("blockllm: %s: %w (not a run this program wrote? choose another directory)", filepath.Join(dir, RunFile), err)
	}
	return &ri, nil
}

// heldEntries lists what dir holds besides the lock and RunFile.
func heldEntries(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("blockllm: %w", err)
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); n != lockFile && n != RunFile {
			out = append(out, n)
		}
	}
	return out, nil
}

func describeSettings(s map[string]string) string {
	if len(s) == 0 {
		return ""
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, "--"+k+" "+strconv.Quote(s[k]))
	}
	if len(parts) > 6 {
		parts = append(parts[:6], "...")
	}
	return " with " + strings.Join(parts, " ")
}

// writeAtomic writes b to path through a synced temporary file renamed into place.
func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := writeSync(tmp, b); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("blockllm: %w", err)
	}
	return nil
}

// CompareSettings returns an error naming every key of want that has another value in
// got, except those in allowed ("*" allows all). Keys present in only one are not
// compared.
func CompareSettings(got, want map[string]string, allowed []string) error {
	allow := map[string]bool{}
	for _, a := range allowed {
		allow[a] = true
	}
	var diffs []string
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, ok := got[k]
		if !ok || g == want[k] || allow[k] || allow["*"] {
			continue
		}
		diffs = append(diffs, fmt.Sprintf("--%s %q (checkpoint: %q)", k, g, want[k]))
	}
	if len(diffs) > 0 {
		var names []string
		for _, d := range diffs {
			names = append(names, strings.TrimPrefix(strings.Fields(d)[0], "--"))
		}
		return fmt.Errorf("this run's settings differ from the checkpoint's: %s; pass the checkpoint's values, "+
			"or --resume-allow %s to continue with the new ones", strings.Join(diffs, ", "), strings.Join(names, ","))
	}
	return nil
}
