package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// BF16ToF32 returns the float32 value of the bfloat16 bit pattern h (exact).
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 rounds f to the nearest bfloat16, ties to even, and returns its
// bit pattern. NaN becomes the quiet NaN 0x7FC0, as in PyTorch (c10::BFloat16).
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN
		return 0x7fc0
	}
	// Adding 0x7FFF plus the lowest kept bit rounds to nearest, ties to even;
	// a carry into the exponent correctly rounds the largest finite values up
	// to infinity.
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// F16ToF32 returns the float32 value of the IEEE 754 half-precision bit
// pattern h (exact: every half value is a float32 value). NaN payloads are
// kept.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias 15 -> 127
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	default: // subnormal: mant * 2^-24, exact in float32
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
}

// F32ToF16 rounds f to the nearest IEEE 754 half-precision value, ties to
// even, and returns its bit pattern. Values beyond the half range round to
// ±Inf, tiny values to subnormals or ±0. NaN becomes the quiet NaN 0x7E00
// with f's sign, as in PyTorch (c10::Half).
//
// This is the branch-light float32 algorithm of Maratyszcza's FP16 library
// (used by c10::Half): scaling by 2^112 then 2^-110 lets the float32 adder do
// the rounding. The explicit float32 conversions forbid fused multiply-add.
func F32ToF16(f float32) uint16 {
	const scaleToInf = 0x1.0p+112
	const scaleToZero = 0x1.0p-110
	w := math.Float32bits(f)
	abs := math.Float32frombits(w & 0x7fffffff)
	base := float32(float32(abs*scaleToInf) * scaleToZero)
	shl1w := w + w
	sign := uint16(w>>16) & 0x8000
	if shl1w > 0xff000000 { // NaN
		return sign | 0x7e00
	}
	bias := shl1w & 0xff000000
	if bias < 0x71000000 {
		bias = 0x71000000
	}
	base = float32(math.Float32frombits(bias>>1+0x07800000) + base)
	bits := math.Float32bits(base)
	return sign | uint16((bits>>13)&0x7c00+bits&0x0fff)
}

// F8E4M3ToF32 returns the float32 value of an F8_E4M3 byte (PyTorch's
// float8_e4m3fn: bias 7, no infinities, S.1111.111 is NaN, max 448).
func F8E4M3ToF32(x uint8) float32 {
	sign := float32(1)
	if x&0x80 != 0 {
		sign = -1
	}
	exp := int(x>>3) & 0xf
	mant := int(x & 7)
	if exp == 0xf && mant == 7 {
		return float32(math.NaN())
	}
	if exp == 0 {
		return sign * float32(math.Ldexp(float64(mant), -9)) // mant/8 * 2^-6
	}
	return sign * float32(math.Ldexp(float64(8+mant), exp-7-3))
}

// F8E5M2ToF32 returns the float32 value of an F8_E5M2 byte (PyTorch's
// float8_e5m2: the upper byte of an IEEE half, with infinities and NaNs).
func F8E5M2ToF32(x uint8) float32 { return F16ToF32(uint16(x) << 8) }

// checkLen returns the element count of src for dt, or an error if src is
// not a whole number of elements.
func checkLen(dt DType, src []byte) (int, error) {
	size := dt.Size()
	if size == 0 {
		return 0, fmt.Errorf("safetensors: invalid dtype %v", dt)
	}
	if len(src)%size != 0 {
		return 0, fmt.Errorf("safetensors: %d bytes is not a whole number of %v elements", len(src), dt)
	}
	return len(src) / size, nil
}

// DecodeFloat32 converts the raw little-endian bytes src of dtype dt (F32,
// F16, BF16, F64, F8_E4M3 or F8_E5M2) to float32 values. F64 values are
// rounded to nearest float32; the others convert exactly. If dst has exactly
// the right length it is filled and returned; otherwise (e.g. nil) a new
// slice is allocated.
func DecodeFloat32(dst []float32, dt DType, src []byte) ([]float32, error) {
	n, err := checkLen(dt, src)
	if err != nil {
		return nil, err
	}
	if !dt.IsFloat() {
		return nil, fmt.Errorf("safetensors: cannot decode %v as float32 (not a floating-point dtype)", dt)
	}
	if len(dst) != n {
		dst = make([]float32, n)
	}
	le := binary.LittleEndian
	switch dt {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToF32(le.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToF32(le.Uint16(src[2*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	case F8E4M3:
		for i := range dst {
			dst[i] = F8E4M3ToF32(src[i])
		}
	case F8E5M2:
		for i := range dst {
			dst[i] = F8E5M2ToF32(src[i])
		}
	}
	return dst, nil
}

// EncodeFloat32 converts src to raw little-endian bytes of dtype dt (F32,
// F16, BF16 or F64), rounding to nearest even for F16 and BF16. If dst has
// exactly the right length it is filled and returned; otherwise a new slice is
// allocated.
func EncodeFloat32(dst []byte, dt DType, src []float32) ([]byte, error) {
	switch dt {
	case F32, F16, BF16, F64:
	default:
		return nil, fmt.Errorf("safetensors: cannot encode float32 values as %v", dt)
	}
	n := len(src) * dt.Size()
	if len(dst) != n {
		dst = make([]byte, n)
	}
	le := binary.LittleEndian
	switch dt {
	case F32:
		for i, v := range src {
			le.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range src {
			le.PutUint16(dst[2*i:], F32ToF16(v))
		}
	case BF16:
		for i, v := range src {
			le.PutUint16(dst[2*i:], F32ToBF16(v))
		}
	case F64:
		for i, v := range src {
			le.PutUint64(dst[8*i:], math.Float64bits(float64(v)))
		}
	}
	return dst, nil
}

// DecodeInt64 converts the raw little-endian bytes src of an integer or BOOL
// dtype to int64 values (BOOL: any nonzero byte is 1). U64 values above
// math.MaxInt64 give an error. If dst has exactly the right length it is
// filled and returned; otherwise a new slice is allocated.
func DecodeInt64(dst []int64, dt DType, src []byte) ([]int64, error) {
	n, err := checkLen(dt, src)
	if err != nil {
		return nil, err
	}
	if dt.IsFloat() {
		return nil, fmt.Errorf("safetensors: cannot decode %v as int64 (floating-point dtype)", dt)
	}
	if len(dst) != n {
		dst = make([]int64, n)
	}
	le := binary.LittleEndian
	switch dt {
	case BOOL:
		for i := range dst {
			dst[i] = 0
			if src[i] != 0 {
				dst[i] = 1
			}
		}
	case U8:
		for i := range dst {
			dst[i] = int64(src[i])
		}
	case I8:
		for i := range dst {
			dst[i] = int64(int8(src[i]))
		}
	case I16:
		for i := range dst {
			dst[i] = int64(int16(le.Uint16(src[2*i:])))
		}
	case U16:
		for i := range dst {
			dst[i] = int64(le.Uint16(src[2*i:]))
		}
	case I32:
		for i := range dst {
			dst[i] = int64(int32(le.Uint32(src[4*i:])))
		}
	case U32:
		for i := range dst {
			dst[i] = int64(le.Uint32(src[4*i:]))
		}
	case I64:
		for i := range dst {
			dst[i] = int64(le.Uint64(src[8*i:]))
		}
	case U64:
		for i := range dst {
			v := le.Uint64(src[8*i:])
			if v > math.MaxInt64 {
				return nil, fmt.Errorf("safetensors: U64 element %d (%d) overflows int64", i, v)
			}
			dst[i] = int64(v)
		}
	}
	return dst, nil
}

// EncodeInt64 converts src to raw little-endian bytes of an integer or BOOL
// dtype dt, failing if a value is out of dt's range (BOOL accepts 0 and 1
// only). If dst has exactly the right length it is filled and returned;
// otherwise a new slice is allocated.
func EncodeInt64(dst []byte, dt DType, src []int64) ([]byte, error) {
	var lo, hi int64
	switch dt {
	case BOOL:
		lo, hi = 0, 1
	case U8:
		lo, hi = 0, math.MaxUint8
	case I8:
		lo, hi = math.MinInt8, math.MaxInt8
	case I16:
		lo, hi = math.MinInt16, math.MaxInt16
	case U16:
		lo, hi = 0, math.MaxUint16
	case I32:
		lo, hi = math.MinInt32, math.MaxInt32
	case U32:
		lo, hi = 0, math.MaxUint32
	case I64:
		lo, hi = math.MinInt64, math.MaxInt64
	case U64:
		lo, hi = 0, math.MaxInt64
	default:
		return nil, fmt.Errorf("safetensors: cannot encode int64 values as %v", dt)
	}
	for i, v := range src {
		if v < lo || v > hi {
			return nil, fmt.Errorf("safetensors: element %d (%d) out of range for %v", i, v, dt)
		}
	}
	size := dt.Size()
	n := len(src) * size
	if len(dst) != n {
		dst = make([]byte, n)
	}
	le := binary.LittleEndian
	for i, v := range src {
		switch size {
		case 1:
			dst[i] = byte(v)
		case 2:
			le.PutUint16(dst[2*i:], uint16(v))
		case 4:
			le.PutUint32(dst[4*i:], uint32(v))
		case 8:
			le.PutUint64(dst[8*i:], uint64(v))
		}
	}
	return dst, nil
}
