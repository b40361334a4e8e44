package config

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInvFreqDefaultAndLinear(t *testing.T) {
	c, err := LlamaPreset("llama-tiny") // head_dim 16, theta 10000
	require.NoError(t, err)
	inv, err := c.InvFreq()
	require.NoError(t, err)
	require.Len(t, inv, 8)
	assert.Equal(t, 1.0, inv[0])
	// 10000^(-2i/16) = 10^(-i/2).
	for i, v := range inv {
		assert.InDelta(t, math.Pow(10, -float64(i)/2), v, 1e-15*math.Max(1, v), "i=%d", i)
	}
	assert.Equal(t, 1.0, c.RopeAttentionFactor())
	f32, err := c.InvFreqFloat32()
	require.NoError(t, err)
	for i := range inv {
		assert.InEpsilon(t, inv[i], float64(f32[i]), 2e-7, "i=%d", i)
	}

	c.RopeScaling = RopeScaling{Type: "linear", Factor: 4}
	lin, err := c.InvFreq()
	require.NoError(t, err)
	lin32, err := c.InvFreqFloat32()
	require.NoError(t, err)
	for i := range inv {
		assert.Equal(t, inv[i]/4, lin[i])
		assert.Equal(t, f32[i]/4, lin32[i]) // division by a power of two is exact
	}
}

// TestInvFreqLlama3 checks Llama 3.1's frequencies (theta 500000, head_dim
// 128, factor 8, low 1, high 4, original context 8192). By hand:
// wavelen_i = 2π·500000^(i/64) is below 8192/4 = 2048 for i <= 28 (kept),
// above 8192 for i >= 35 (divided by 8), and in between for i = 29..34.
func TestInvFreqLlama3(t *testing.T) {
	c, err := ParseLlama([]byte(llama31))
	require.NoError(t, err)
	inv, err := c.InvFreq()
	require.NoError(t, err)
	inv32, err := c.InvFreqFloat32()
	require.NoError(t, err)
	require.Len(t, inv, 64)
	for i := range inv {
		base := math.Pow(500000, -float64(i)/64)
		switch {
		case i <= 28:
			assert.InEpsilon(t, base, inv[i], 1e-14, "i=%d kept", i)
		case i >= 35:
			assert.InEpsilon(t, base/8, inv[i], 1e-14, "i=%d scaled", i)
		default:
			assert.Less(t, inv[i], base, "i=%d", i)
			assert.Greater(t, inv[i], base/8, "i=%d", i)
			// The smoothing weight s is linear in 1/wavelen, between 0
			// and 1: recover it and check its range.
			s := (inv[i]/base - 1.0/8) / (1 - 1.0/8)
			wantS := (8192/(2*math.Pi/base) - 1) / 3
			assert.InDelta(t, wantS, s, 1e-12, "i=%d", i)
			assert.True(t, s > 0 && s < 1)
		}
		assert.InEpsilon(t, inv[i], float64(inv32[i]), 1e-6, "float32 path i=%d", i)
		if i > 0 {
			assert.Less(t, inv[i], inv[i-1], "decreasing")
		}
	}
}

func TestInvFreqErrors(t *testing.T) {
	c, _ := LlamaPreset("llama-tiny")
	c.RopeScaling = RopeScaling{Type: "dynamic", Factor: 2}
	_, err := c.InvFreq()
	assert.ErrorContains(t, err, `key "rope_parameters.rope_type": "dynamic" is not supported`)
	_, err = c.InvFreqFloat32()
	assert.Error(t, err)
	c.RopeScaling = RopeScaling{}
	c.ExplicitHeadDim = 7
	_, err = c.InvFreq()
	assert.ErrorContains(t, err, "head_dim")
	c.ExplicitHeadDim = 0
	c.RopeTheta = 0
	_, err = c.InvFreq()
	assert.ErrorContains(t, err, `key "rope_theta": must be positive`)
}
