package safetensors

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refF16 computes the value of a half bit pattern from its fields with
// math.Ldexp, independently of F16ToF32's bit manipulation.
func refF16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0x1f:
		if mant != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	case 0:
		return sign * math.Ldexp(mant, -24)
	}
	return sign * math.Ldexp(1024+mant, exp-25)
}

func TestF16Exhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		ref := refF16(h)
		if math.IsNaN(ref) {
			require.True(t, math.IsNaN(float64(f)), "h=%#04x", h)
			back := F32ToF16(f)
			require.Equal(t, uint16(0x7e00)|h&0x8000, back, "NaN %#04x", h)
			continue
		}
		require.Equal(t, ref, float64(f), "h=%#04x", h)
		require.Equal(t, h, F32ToF16(f), "round trip h=%#04x", h)
	}
}

// TestF16RoundNearestEven checks every midpoint between adjacent positive
// halves (finite ones and the step to infinity): the midpoint rounds to the
// even neighbour, and the float32 values just above and below it round to
// the upper and lower neighbour.
func TestF16RoundNearestEven(t *testing.T) {
	for h := uint16(0); h < 0x7c00; h++ {
		lo := refF16(h)
		hi := refF16(h + 1)
		if h+1 == 0x7c00 {
			hi = 65536 // where the next binade would start
		}
		mid := float32((lo + hi) / 2)
		require.Equal(t, (lo+hi)/2, float64(mid), "midpoint must be exact in float32")
		even := h
		if h&1 == 1 {
			even = h + 1
		}
		require.Equal(t, even, F32ToF16(mid), "midpoint of %#04x", h)
		require.Equal(t, even|0x8000, F32ToF16(-mid), "negative midpoint of %#04x", h)
		above := math.Nextafter32(mid, float32(math.Inf(1)))
		below := math.Nextafter32(mid, 0)
		require.Equal(t, h+1, F32ToF16(above), "above midpoint of %#04x", h)
		require.Equal(t, h, F32ToF16(below), "below midpoint of %#04x", h)
	}
	assert.Equal(t, uint16(0x7c00), F32ToF16(1e10))
	assert.Equal(t, uint16(0xfc00), F32ToF16(float32(math.Inf(-1))))
	assert.Equal(t, uint16(0x0000), F32ToF16(1e-10))
	assert.Equal(t, uint16(0x8000), F32ToF16(-1e-10))
	assert.Equal(t, uint16(0x0000), F32ToF16(math.Float32frombits(1))) // float32 subnormal
	assert.Equal(t, uint16(0x3c00), F32ToF16(1))
	assert.Equal(t, uint16(0x7bff), F32ToF16(65504))
	assert.Equal(t, uint16(0x3555), F32ToF16(1.0/3))
}

func TestBF16(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := BF16ToF32(h)
		require.Equal(t, uint32(h)<<16, math.Float32bits(f))
		if math.IsNaN(float64(f)) {
			require.Equal(t, uint16(0x7fc0), F32ToBF16(f))
			continue
		}
		require.Equal(t, h, F32ToBF16(f), "round trip %#04x", h)
		if h&0x7fff >= 0x7f80 {
			continue // Inf: no upper neighbour
		}
		// Midpoint between h and the next pattern away from zero.
		mid := math.Float32frombits(uint32(h)<<16 | 0x8000)
		even := h
		if h&1 == 1 {
			even = h + 1
		}
		require.Equal(t, even, F32ToBF16(mid), "midpoint above %#04x", h)
		require.Equal(t, h+1, F32ToBF16(math.Float32frombits(uint32(h)<<16|0x8001)))
		require.Equal(t, h, F32ToBF16(math.Float32frombits(uint32(h)<<16|0x7fff)))
	}
	assert.Equal(t, uint16(0x7f80), F32ToBF16(math.MaxFloat32), "max float32 rounds to +Inf")
	assert.Equal(t, uint16(0x3f80), F32ToBF16(1))
	assert.Equal(t, uint16(0x3eab), F32ToBF16(1.0/3))
}

func TestF8(t *testing.T) {
	assert.Equal(t, float32(448), F8E4M3ToF32(0x7e))
	assert.Equal(t, float32(-448), F8E4M3ToF32(0xfe))
	assert.True(t, math.IsNaN(float64(F8E4M3ToF32(0x7f))))
	assert.Equal(t, float32(1), F8E4M3ToF32(0x38))
	assert.Equal(t, float32(math.Ldexp(1, -9)), F8E4M3ToF32(0x01))
	assert.Equal(t, float32(math.Ldexp(1, -6)), F8E4M3ToF32(0x08))
	assert.Equal(t, float32(57344), F8E5M2ToF32(0x7b))
	assert.True(t, math.IsInf(float64(F8E5M2ToF32(0x7c)), 1))
	assert.Equal(t, float32(1), F8E5M2ToF32(0x3c))
}

func TestEncodeDecode(t *testing.T) {
	x := []float32{0, -1.5, 3.25, 1e-3, 65504, float32(math.Inf(-1))}
	for _, dt := range []DType{F32, F16, BF16, F64} {
		b, err := EncodeFloat32(nil, dt, x)
		require.NoError(t, err)
		require.Len(t, b, len(x)*dt.Size())
		y, err := DecodeFloat32(nil, dt, b)
		require.NoError(t, err)
		for i := range x {
			var want float32
			switch dt {
			case F16:
				want = F16ToF32(F32ToF16(x[i]))
			case BF16:
				want = BF16ToF32(F32ToBF16(x[i]))
			default:
				want = x[i]
			}
			assert.Equal(t, want, y[i], "%v[%d]", dt, i)
		}
		// Destination reuse.
		dst := make([]float32, len(x))
		y2, err := DecodeFloat32(dst, dt, b)
		require.NoError(t, err)
		assert.Equal(t, &dst[0], &y2[0])
	}
	b, _ := EncodeFloat32(nil, F32, []float32{1, 2})
	assert.Equal(t, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}, b, "little-endian")

	ints := []int64{0, 1, -1, 127, -128}
	for _, dt := range []DType{I8, I16, I32, I64} {
		b, err := EncodeInt64(nil, dt, ints)
		require.NoError(t, err)
		y, err := DecodeInt64(nil, dt, b)
		require.NoError(t, err)
		assert.Equal(t, ints, y, "%v", dt)
	}
	for _, dt := range []DType{U8, U16, U32, U64, BOOL} {
		_, err := EncodeInt64(nil, dt, []int64{-1})
		require.Error(t, err, "%v", dt)
		b, err := EncodeInt64(nil, dt, []int64{0, 1})
		require.NoError(t, err)
		y, err := DecodeInt64(nil, dt, b)
		require.NoError(t, err)
		assert.Equal(t, []int64{0, 1}, y)
	}
	_, err := EncodeInt64(nil, I8, []int64{128})
	assert.ErrorContains(t, err, "out of range for I8")
	_, err = EncodeInt64(nil, BOOL, []int64{2})
	assert.Error(t, err)
	_, err = DecodeInt64(nil, U64, []byte{0, 0, 0, 0, 0, 0, 0, 0x80})
	assert.ErrorContains(t, err, "overflows int64")
	_, err = DecodeFloat32(nil, F32, []byte{1, 2, 3})
	assert.ErrorContains(t, err, "not a whole number")
	_, err = DecodeFloat32(nil, I64, make([]byte, 8))
	assert.ErrorContains(t, err, "not a floating-point dtype")
	_, err = DecodeInt64(nil, F32, make([]byte, 4))
	assert.Error(t, err)
	_, err = EncodeFloat32(nil, I32, x)
	assert.Error(t, err)
	y, err := DecodeInt64(nil, BOOL, []byte{0, 7})
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 1}, y)
}

func TestDType(t *testing.T) {
	for _, d := range DTypes() {
		p, err := ParseDType(d.String())
		require.NoError(t, err)
		assert.Equal(t, d, p)
		assert.True(t, d.Valid())
		assert.Greater(t, d.Size(), 0)
	}
	sizes := map[DType]int{F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I8: 1, U8: 1, BOOL: 1}
	for d, s := range sizes {
		assert.Equal(t, s, d.Size(), "%v", d)
	}
	_, err := ParseDType("f32")
	assert.ErrorContains(t, err, `unknown dtype "f32"`)
	assert.False(t, Invalid.Valid())
	assert.Equal(t, 0, DType(200).Size())
	assert.Equal(t, "DType(200)", DType(200).String())
	assert.Equal(t, "F8_E4M3", F8E4M3.String())
}
