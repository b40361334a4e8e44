package scripts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// runScript runs a bash command line from the repository root with extra environment.
func runScript(t *testing.T, env []string, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String() + errb.String(), err
}

// fakeTorch makes a directory holding a Python package named torch: empty (a namespace
// package, like this repository's Go directory torch/), or with an __init__.py and,
// when full, the include/ and lib/ a real install has.
func fakeTorch(t *testing.T, init, full bool) string {
	t.Helper()
	dir := t.TempDir()
	pkg := filepath.Join(dir, "torch")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(pkg, 0o755))
	if init {
		must(os.WriteFile(filepath.Join(pkg, "__init__.py"), []byte("__version__ = '9.9.9'\nclass _C:\n    _GLIBCXX_USE_CXX11_ABI = True\n"), 0o644))
	}
	if full {
		must(os.MkdirAll(filepath.Join(pkg, "include", "torch"), 0o755))
		must(os.MkdirAll(filepath.Join(pkg, "lib"), 0o755))
		must(os.WriteFile(filepath.Join(pkg, "lib", "libtorch_cpu.so"), nil, 0o644))
	}
	return dir
}

// TestTorchProbeNotFooled: the Python torch probe of install-deps.sh and
// find-libtorch.sh, run from the repository root, rejects this repository's torch/
// directory and a fake empty torch/ on PYTHONPATH (namespace packages), and a torch
// package without C++ headers and libraries; it accepts one that has them. So on a
// machine without a Python torch, install-deps.sh asks for libtorch-dev.
func TestTorchProbeNotFooled(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	probe := `. scripts/lib/python-torch.sh && python_torch`
	for name, path := range map[string]string{
		"repository root":         repoRoot(t),
		"empty torch/":            fakeTorch(t, false, false),
		"torch without libraries": fakeTorch(t, true, false),
	} {
		// the probe may still find an installed torch further on the path (Debian's
		// python3-torch with libtorch-dev's headers), but never the one put first
		out, err := runScript(t, []string{"PYTHONPATH=" + path}, probe)
		if first, _, _ := strings.Cut(out, "\n"); err == nil && (first == "" || strings.HasPrefix(first, path)) {
			t.Errorf("%s on PYTHONPATH: the probe accepted it as a Python torch: %q", name, out)
		}
		out, err = runScript(t, []string{"PYTHONPATH=" + path, "LIBTORCH="}, "scripts/install-deps.sh --print-packages")
		if err != nil {
			t.Fatalf("install-deps.sh --print-packages: %v: %s", err, out)
		}
		if !strings.Contains(out, "libtorch-dev") && !realPythonTorch(t) {
			t.Errorf("%s on PYTHONPATH: install-deps.sh would not install libtorch-dev: %q", name, out)
		}
	}
	full := fakeTorch(t, true, true)
	out, err := runScript(t, []string{"PYTHONPATH=" + full}, probe)
	if err != nil {
		t.Fatalf("a torch with headers and libraries was rejected: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[0] != filepath.Join(full, "torch") || lines[1] != "9.9.9" || lines[2] != "1" {
		t.Errorf("probe output %q, want the package directory, version and ABI", out)
	}
	out, err = runScript(t, []string{"PYTHONPATH=" + full, "BLOCKLLM_NO_PYTHON_TORCH=1"}, probe)
	if err == nil {
		t.Errorf("BLOCKLLM_NO_PYTHON_TORCH=1 did not turn the probe off: %q", out)
	}
}

// realPythonTorch reports whether this machine's python3 has a real torch (then
// install-deps rightly skips libtorch-dev).
func realPythonTorch(t *testing.T) bool {
	_, err := runScript(t, []string{"PYTHONPATH="}, `. scripts/lib/python-torch.sh && python_torch`)
	return err == nil
}

// TestFindLibtorchFromRoot: find-libtorch.sh run from the repository root, with this
// repository's torch/ on PYTHONPATH, still finds the libtorch the build uses.
func TestFindLibtorchFromRoot(t *testing.T) {
	out, err := runScript(t, []string{"PYTHONPATH=" + repoRoot(t)}, "scripts/find-libtorch.sh")
	if err != nil {
		t.Skipf("no libtorch on this machine (%v): %s", err, out)
	}
	if !strings.Contains(out, "TORCH_VERSION=") || strings.Contains(out, "TORCH_ROOT="+repoRoot(t)) {
		t.Errorf("find-libtorch.sh output: %s", out)
	}
}
