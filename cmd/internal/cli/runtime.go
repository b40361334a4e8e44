package cli

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"github.com/blockllm/blockllm-go/torch"
)

// Runtime holds the --device, --dtype, --threads and --deterministic flags.
type Runtime struct {
	Device        string
	DType         string
	Threads       int
	Deterministic bool
}

// Register defines the flags on fs; dtypeDefault and dtypeHelp describe --dtype.
func (r *Runtime) Register(fs *flag.FlagSet, dtypeDefault, dtypeHelp string) {
	fs.StringVar(&r.Device, "device", "cpu", "device: cpu, cuda or cuda:N")
	fs.StringVar(&r.DType, "dtype", dtypeDefault, dtypeHelp)
	fs.IntVar(&r.Threads, "threads", 0, "CPU threads for libtorch (0: all cores)")
	fs.BoolVar(&r.Deterministic, "deterministic", false, "reproducible bits: libtorch's deterministic algorithms (needed on CUDA; CPU runs\n"+
		"are reproducible without it), and the thread count becomes part of the run's settings (a resume must match it)")
}

// Setup loads the shim (its error says what to build), sets the intra-op thread
// count (0: all cores; libtorch's own default can be a single thread) and checks that
// a CUDA device is usable when one is asked for.
func (r *Runtime) Setup() (torch.Device, error) {
	dev, err := Setup(r.Threads, r.Device)
	if err == nil && r.Deterministic {
		err = torch.Try(func() { torch.SetDeterministic(true, false) })
	}
	return dev, err
}

// DeterminismSettings are the settings a --deterministic run adds to its own: the
// thread count, which decides how CPU reductions are split (and so their bits).
func (r *Runtime) DeterminismSettings(settings map[string]string) map[string]string {
	if r.Deterministic {
		settings["threads"] = fmt.Sprint(torch.NumThreads())
	}
	return settings
}

// Setup is Runtime.Setup for the given flag values.
func Setup(threads int, device string) (torch.Device, error) {
	if err := torch.Init(); err != nil {
		return torch.Device{}, err
	}
	if threads < 0 {
		return torch.Device{}, fmt.Errorf("--threads %d must not be negative (0: all cores)", threads)
	}
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return torch.Device{}, fmt.Errorf("--device: %w", err)
	}
	if threads == 0 {
		// data-parallel workers on one machine share its cores
		if n, err := strconv.Atoi(os.Getenv("LOCAL_WORLD_SIZE")); err == nil && n > 1 {
			threads = max(1, runtime.NumCPU()/n)
		}
	}
	missing := false
	if err := torch.Try(func() {
		torch.SetNumThreads(threads)
		missing = dev.IsCUDA() && (!torch.CUDAAvailable() || dev.Index >= torch.CUDADeviceCount())
	}); err != nil {
		return dev, err
	}
	if missing {
		return dev, fmt.Errorf("--device %s: this libtorch has no such CUDA device (rebuild the shim against a CUDA libtorch: make shim)", device)
	}
	return dev, nil
}

// TrainDType parses --dtype for training: f32 or bf16.
func (r *Runtime) TrainDType() (torch.DType, error) { return ParseTrainDType(r.DType) }

// ParseTrainDType accepts the training dtypes of the commands: f32 or bf16.
func ParseTrainDType(s string) (torch.DType, error) {
	dt, err := torch.ParseDType(s)
	if err != nil {
		return 0, fmt.Errorf("--dtype: %w", err)
	}
	if dt != torch.F32 && dt != torch.BF16 {
		return 0, fmt.Errorf("--dtype %s: want f32 or bf16", s)
	}
	return dt, nil
}
