package torch

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/blockllm/blockllm-go/cgo"
)

func (s *Scope) create(op string, code int, shape []int64, dt DType, dev Device, v float64, g *Generator) *Tensor {
	mustInit(op)
	if g != nil && g.dev != dev {
		// a generator draws on its own device: draw there, then move (a CPU generator
		// gives the same values for every device)
		tmp := NewScope()
		defer tmp.Close()
		return tmp.create(op, code, shape, dt, g.dev, v, g).ToDevice(dt, dev).MoveTo(s)
	}
	h, err := cgo.Create(code, shape, int(dt), int(dev.Type), dev.Index, v, g.handle())
	if err != nil {
		fail(op, err)
	}
	return s.add(h)
}

// Empty returns an uninitialised tensor.
func (s *Scope) Empty(shape []int64, dt DType, dev Device) *Tensor {
	return s.create("empty", cgo.CreateEmpty, shape, dt, dev, 0, nil)
}

// Zeros returns a tensor of zeros.
func (s *Scope) Zeros(shape []int64, dt DType, dev Device) *Tensor {
	return s.create("zeros", cgo.CreateZeros, shape, dt, dev, 0, nil)
}

// Ones returns a tensor of ones.
func (s *Scope) Ones(shape []int64, dt DType, dev Device) *Tensor {
	return s.create("ones", cgo.CreateOnes, shape, dt, dev, 0, nil)
}

// Full returns a tensor filled with v.
func (s *Scope) Full(shape []int64, v float64, dt DType, dev Device) *Tensor {
	return s.create("full", cgo.CreateFull, shape, dt, dev, v, nil)
}

// Scalar returns a 0-dim tensor holding v.
func (s *Scope) Scalar(v float64, dt DType, dev Device) *Tensor {
	return s.create("scalar", cgo.CreateFull, nil, dt, dev, v, nil)
}

// Randn samples N(0, 1) from g (nil: the default generator).
func (s *Scope) Randn(shape []int64, dt DType, dev Device, g *Generator) *Tensor {
	return s.create("randn", cgo.CreateRandn, shape, dt, dev, 0, g)
}

// Rand samples U[0, 1) from g (nil: the default generator).
func (s *Scope) Rand(shape []int64, dt DType, dev Device, g *Generator) *Tensor {
	return s.create("rand", cgo.CreateRand, shape, dt, dev, 0, g)
}

// RandInt samples int64 values in [low, high) from g (nil: the default generator).
func (s *Scope) RandInt(low, high int64, shape []int64, dev Device, g *Generator) *Tensor {
	mustInit("randint")
	h, err := cgo.RandInt(low, high, shape, int(dev.Type), dev.Index, g.handle())
	if err != nil {
		fail("randint", err)
	}
	return s.add(h)
}

// Arange is torch.arange(start, end, step).
func (s *Scope) Arange(start, end, step float64, dt DType, dev Device) *Tensor {
	mustInit("arange")
	h, err := cgo.Arange(start, end, step, int(dt), int(dev.Type), dev.Index)
	if err != nil {
		fail("arange", err)
	}
	return s.add(h)
}

// FromBytes copies raw little-endian data of dtype dt into a new CPU tensor. len(data)
// must equal numel(shape) * dt.Size().
func (s *Scope) FromBytes(data []byte, shape []int64, dt DType) *Tensor {
	mustInit("from_bytes")
	h, err := cgo.FromBytes(data, shape, int(dt))
	if err != nil {
		fail("from_bytes", err)
	}
	return s.add(h)
}

func checkLen(op string, n int, shape []int64) {
	if int64(n) != numel(shape) {
		panic(&Error{Op: op, Msg: fmt.Sprintf("%d values do not fill shape %v (%d elements)", n, shape, numel(shape))})
	}
}

func bytesOf[T any](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	var z T
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*int(unsafe.Sizeof(z)))
}

// FromFloat32 makes a CPU f32 tensor from values (copied).
func (s *Scope) FromFloat32(v []float32, shape ...int64) *Tensor {
	checkLen("from_float32", len(v), shape)
	return s.FromBytes(bytesOf(v), shape, F32)
}

// FromFloat64 makes a CPU f64 tensor from values (copied).
func (s *Scope) FromFloat64(v []float64, shape ...int64) *Tensor {
	checkLen("from_float64", len(v), shape)
	return s.FromBytes(bytesOf(v), shape, F64)
}

// FromInt64 makes a CPU i64 tensor from values (copied).
func (s *Scope) FromInt64(v []int64, shape ...int64) *Tensor {
	checkLen("from_int64", len(v), shape)
	return s.FromBytes(bytesOf(v), shape, I64)
}

// FromInt32 makes a CPU i32 tensor from values (copied).
func (s *Scope) FromInt32(v []int32, shape ...int64) *Tensor {
	checkLen("from_int32", len(v), shape)
	return s.FromBytes(bytesOf(v), shape, I32)
}

// FromBool makes a CPU bool tensor from values (copied).
func (s *Scope) FromBool(v []bool, shape ...int64) *Tensor {
	checkLen("from_bool", len(v), shape)
	b := make([]byte, len(v))
	for i, x := range v {
		if x {
			b[i] = 1
		}
	}
	return s.FromBytes(b, shape, Bool)
}

// Bytes copies the data (moved to CPU, contiguous) as raw little-endian bytes.
func (t *Tensor) Bytes() []byte {
	t.check("bytes")
	b := make([]byte, t.NBytes())
	if err := cgo.ToBytes(t.h, b); err != nil {
		fail("bytes", err)
	}
	return b
}

func (t *Tensor) as(op string, dt DType) *Tensor {
	if t.DType() == dt && t.Device().Type == CPUType {
		return t
	}
	return t.To(dt)
}

// Float32s copies the values as float32 (converted from any dtype).
func (t *Tensor) Float32s() []float32 {
	t.check("float32s")
	var out []float32
	withTemp(t, func(x *Tensor) {
		x = x.as("float32s", F32)
		out = make([]float32, x.Numel())
		if err := cgo.ToBytes(x.h, bytesOf(out)); err != nil {
			fail("float32s", err)
		}
	})
	return out
}

// Float64s copies the values as float64 (converted from any dtype).
func (t *Tensor) Float64s() []float64 {
	t.check("float64s")
	var out []float64
	withTemp(t, func(x *Tensor) {
		x = x.as("float64s", F64)
		out = make([]float64, x.Numel())
		if err := cgo.ToBytes(x.h, bytesOf(out)); err != nil {
			fail("float64s", err)
		}
	})
	return out
}

// Int64s copies the values as int64 (converted from any dtype).
func (t *Tensor) Int64s() []int64 {
	t.check("int64s")
	var out []int64
	withTemp(t, func(x *Tensor) {
		x = x.as("int64s", I64)
		out = make([]int64, x.Numel())
		if err := cgo.ToBytes(x.h, bytesOf(out)); err != nil {
			fail("int64s", err)
		}
	})
	return out
}

// Bools copies the values as bool (nonzero is true).
func (t *Tensor) Bools() []bool {
	t.check("bools")
	var out []bool
	withTemp(t, func(x *Tensor) {
		x = x.as("bools", Bool)
		b := make([]byte, x.Numel())
		if err := cgo.ToBytes(x.h, b); err != nil {
			fail("bools", err)
		}
		out = make([]bool, len(b))
		for i, v := range b {
			out[i] = v != 0
		}
	})
	return out
}

// withTemp runs f on an alias of t in a temporary scope that is closed afterwards, so
// conversions made inside do not leak into t's scope.
func withTemp(t *Tensor, f func(x *Tensor)) {
	tmp := NewScope()
	defer tmp.Close()
	f(tmp.In(t))
}

// Item returns the value of a one-element tensor.
func (t *Tensor) Item() float64 {
	t.check("item")
	v, err := cgo.Item(t.h)
	if err != nil {
		fail("item", err)
	}
	return v
}

// Float32sFromBytes decodes little-endian f32 bytes (a helper for tests and loaders).
func Float32sFromBytes(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// Generator is a seeded random generator on a device. Close frees it.
type Generator struct {
	h   unsafe.Pointer
	dev Device
}

// NewGenerator creates a generator seeded with seed on dev.
func NewGenerator(seed uint64, dev Device) *Generator {
	mustInit("generator")
	h, err := cgo.NewGenerator(seed, int(dev.Type), dev.Index)
	if err != nil {
		fail("generator", err)
	}
	return &Generator{h: h, dev: dev}
}

// Device is the device g draws on.
func (g *Generator) Device() Device { return g.dev }

func (g *Generator) handle() unsafe.Pointer {
	if g == nil {
		return nil
	}
	return g.h
}

// Close frees the generator.
func (g *Generator) Close() {
	if g != nil && g.h != nil {
		_ = cgo.FreeGenerator(g.h)
		g.h = nil
	}
}

// State returns the generator state as bytes (for checkpoints).
func (g *Generator) State() []byte {
	h, err := cgo.GeneratorState(g.h)
	if err != nil {
		fail("generator_state", err)
	}
	defer cgo.Free(h)
	info, err := cgo.GetInfo(h)
	if err != nil {
		fail("generator_state", err)
	}
	b := make([]byte, numel(info.Shape)*int64(DType(info.DType).Size()))
	if err := cgo.ToBytes(h, b); err != nil {
		fail("generator_state", err)
	}
	return b
}

// SetState restores a state returned by State.
func (g *Generator) SetState(state []byte) {
	h, err := cgo.FromBytes(state, []int64{int64(len(state))}, int(U8))
	if err != nil {
		fail("generator_set_state", err)
	}
	defer cgo.Free(h)
	if err := cgo.SetGeneratorState(g.h, h); err != nil {
		fail("generator_set_state", err)
	}
}
