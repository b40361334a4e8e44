package eval

import (
	"fmt"

	"github.com/blockllm/blockllm-go/torch"
)

// Setup prepares libtorch for a command from its --threads and --device flags: it loads
// the shim (its error says what to build), sets the intra-op thread count (0: all
// cores; libtorch's own default can be a single thread), and checks that a CUDA device
// is usable when one is asked for.
func Setup(threads int, device string) (torch.Device, error) {
	if err := torch.Init(); err != nil {
		return torch.Device{}, err
	}
	torch.SetNumThreads(threads)
	dev, err := torch.ParseDevice(device)
	if err != nil {
		return torch.Device{}, fmt.Errorf("--device: %w", err)
	}
	if dev.IsCUDA() && (!torch.CUDAAvailable() || dev.Index >= torch.CUDADeviceCount()) {
		return torch.Device{}, fmt.Errorf("--device %s: this libtorch has no such CUDA device (rebuild the shim against a CUDA libtorch: make shim)", device)
	}
	return dev, nil
}

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
