package config

import (
	"math"
)

// InvFreq returns the RoPE inverse frequencies, HeadDim()/2 values, computed
// in float64 by transformers' formulas for the config's rope type:
//
//	default: inv_freq[i] = 1 / rope_theta^(2i/head_dim)
//	linear:  inv_freq[i] / factor
//	llama3:  with wavelen = 2π/inv_freq, low_wl = original/low_freq_factor and
//	         high_wl = original/high_freq_factor: unchanged where
//	         wavelen < high_wl, divided by factor where wavelen > low_wl, and in
//	         between (1-s)·inv/factor + s·inv with
//	         s = (original/wavelen - low_freq_factor)/(high_freq_factor - low_freq_factor).
//
// Position p of head dimension j (j < HeadDim/2, and j+HeadDim/2 for the
// second half, as rotate_half pairs them) is rotated by the angle
// p·inv_freq[j]. The error names the bad key if the config is invalid.
func (c *LlamaConfig) InvFreq() ([]float64, error) {
	if err := c.validateRope(); err != nil {
		return nil, err
	}
	dim := c.HeadDim()
	if dim <= 0 || dim%2 != 0 {
		return nil, keyErr("head_dim", "RoPE needs a positive even head size, got %d", dim)
	}
	inv := make([]float64, dim/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(dim))
	}
	r := &c.RopeScaling
	switch r.kind() {
	case "linear":
		for i := range inv {
			inv[i] /= r.Factor
		}
	case "llama3":
		old := float64(r.OriginalMaxPositionEmbeddings)
		lowWL := old / r.LowFreqFactor
		highWL := old / r.HighFreqFactor
		for i, f := range inv {
			wl := 2 * math.Pi / f
			switch {
			case wl < highWL:
			case wl > lowWL:
				inv[i] = f / r.Factor
			default:
				s := (old/wl - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
				inv[i] = (1-s)*f/r.Factor + s*f
			}
		}
	}
	return inv, nil
}

// InvFreqFloat32 returns the same frequencies as InvFreq, but computed with
// transformers' float32 tensor arithmetic, step by step (exponent 2i/dim in
// float32, the power rounded to float32, reciprocal and scaling in float32),
// so that cos/sin tables built from them match PyTorch's closely. The power is
// correctly rounded here; PyTorch's float32 pow may differ by an ulp.
func (c *LlamaConfig) InvFreqFloat32() ([]float32, error) {
	if err := c.validateRope(); err != nil {
		return nil, err
	}
	dim := c.HeadDim()
	if dim <= 0 || dim%2 != 0 {
		return nil, keyErr("head_dim", "RoPE needs a positive even head size, got %d", dim)
	}
	base := float64(float32(c.RopeTheta))
	inv := make([]float32, dim/2)
	for i := range inv {
		e := float32(2*i) / float32(dim)
		p := float32(math.Pow(base, float64(e)))
		inv[i] = float32(1) / p
	}
	r := &c.RopeScaling
	switch r.kind() {
	case "linear":
		factor := float32(r.Factor)
		for i := range inv {
			inv[i] = inv[i] / factor
		}
	case "llama3":
		factor := float32(r.Factor)
		low := float32(r.LowFreqFactor)
		span := float32(r.HighFreqFactor - r.LowFreqFactor) // a Python float scalar
		old := float64(r.OriginalMaxPositionEmbeddings)
		lowWL := float32(old / r.LowFreqFactor) // Python float scalars
		highWL := float32(old / r.HighFreqFactor)
		twoPi := float32(2 * math.Pi)
		old32 := float32(old)
		for i, f := range inv {
			wl := twoPi / f
			scaled := f
			if wl > lowWL {
				scaled = f / factor
			}
			if !(wl < highWL) && !(wl > lowWL) {
				s := float32(float32(old32/wl)-low) / span
				a := float32(float32(float32(1)-s)*scaled) / factor
				b := float32(s * scaled)
				scaled = a + b
			}
			inv[i] = scaled
		}
	}
	return inv, nil
}

// RopeAttentionFactor returns the factor transformers multiplies cos and sin
// by ("attention_scaling"): 1 for the default, linear and llama3 types.
func (c *LlamaConfig) RopeAttentionFactor() float64 { return 1 }
