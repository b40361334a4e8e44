package torch

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// DType is an element type; values are libtorch's c10::ScalarType codes.
type DType int

// Supported dtypes.
const (
	U8   DType = 0
	I8   DType = 1
	I32  DType = 3
	I64  DType = 4
	F16  DType = 5
	F32  DType = 6
	F64  DType = 7
	Bool DType = 11
	BF16 DType = 15
)

// Size is the element size in bytes.
func (d DType) Size() int {
	switch d {
	case U8, I8, Bool:
		return 1
	case F16, BF16:
		return 2
	case I32, F32:
		return 4
	case I64, F64:
		return 8
	}
	return 0
}

// IsFloat reports a floating-point dtype.
func (d DType) IsFloat() bool { return d == F16 || d == BF16 || d == F32 || d == F64 }

func (d DType) String() string {
	switch d {
	case U8:
		return "uint8"
	case I8:
		return "int8"
	case I32:
		return "int32"
	case I64:
		return "int64"
	case F16:
		return "float16"
	case F32:
		return "float32"
	case F64:
		return "float64"
	case Bool:
		return "bool"
	case BF16:
		return "bfloat16"
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// ParseDType accepts torch names and short forms: f32/float32/float, bf16/bfloat16,
// f16/float16/half, f64/float64/double, i64/int64/long, i32/int32/int, u8, i8, bool.
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(strings.TrimPrefix(s, "torch.")) {
	case "f32", "float32", "float", "fp32":
		return F32, nil
	case "bf16", "bfloat16":
		return BF16, nil
	case "f16", "float16", "half", "fp16":
		return F16, nil
	case "f64", "float64", "double":
		return F64, nil
	case "i64", "int64", "long":
		return I64, nil
	case "i32", "int32", "int":
		return I32, nil
	case "u8", "uint8":
		return U8, nil
	case "i8", "int8":
		return I8, nil
	case "bool":
		return Bool, nil
	}
	return 0, fmt.Errorf("torch: unknown dtype %q (want f32, bf16, f16, f64, i64, i32, u8, i8 or bool)", s)
}

// DeviceType is libtorch's c10::DeviceType code.
type DeviceType int

// Device types.
const (
	CPUType  DeviceType = 0
	CUDAType DeviceType = 1
)

// Device is a device type and index.
type Device struct {
	Type  DeviceType
	Index int
}

// CPU is the host device.
var CPU = Device{Type: CPUType}

// CUDA returns CUDA device n.
func CUDA(n int) Device { return Device{Type: CUDAType, Index: n} }

func (d Device) String() string {
	if d.Type == CUDAType {
		return "cuda:" + strconv.Itoa(d.Index)
	}
	return "cpu"
}

// IsCUDA reports a CUDA device.
func (d Device) IsCUDA() bool { return d.Type == CUDAType }

// ParseDevice accepts "cpu", "cuda" and "cuda:N".
func ParseDevice(s string) (Device, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "cpu" || s == "":
		return CPU, nil
	case s == "cuda":
		return CUDA(0), nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(s[5:])
		if err != nil || n < 0 {
			return Device{}, fmt.Errorf("torch: bad device %q (want cpu, cuda or cuda:N)", s)
		}
		return CUDA(n), nil
	}
	return Device{}, fmt.Errorf("torch: bad device %q (want cpu, cuda or cuda:N)", s)
}

// DeviceEnv is the environment variable naming the device tests run on.
const DeviceEnv = "BLOCKLLM_DEVICE"

// DeviceFromEnv loads the shim and returns the device named by $BLOCKLLM_DEVICE (CPU
// when unset): the test suites and scripts/gpu-check.sh use it to run on a GPU.
func DeviceFromEnv() (Device, error) {
	if err := Init(); err != nil {
		return Device{}, err
	}
	d := os.Getenv(DeviceEnv)
	if d == "" {
		return CPU, nil
	}
	dev, err := ParseDevice(d)
	if err != nil {
		return Device{}, fmt.Errorf("%s: %w", DeviceEnv, err)
	}
	return dev, nil
}
