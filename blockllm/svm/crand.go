package svm

// cRand reproduces the C library rand() of glibc (the TYPE_3 additive
// feedback generator behind random()), which LIBSVM uses for the folds of
// cross-validation and of probability estimates. LIBSVM's tools never call
// srand, so their stream is the one of seed 1; with the same seed the folds
// here are LIBSVM's folds.
type cRand struct {
	state [31]int32
	f, r  int
}

// newCRand returns the generator after srand(seed) (seed 0 acts as 1, as in glibc).
func newCRand(seed uint32) *cRand {
	c := &cRand{}
	if seed == 0 {
		seed = 1
	}
	c.state[0] = int32(seed)
	word := int64(int32(seed))
	for i := 1; i < 31; i++ {
		hi := word / 127773
		lo := word % 127773
		word = 16807*lo - 2836*hi
		if word < 0 {
			word += 2147483647
		}
		c.state[i] = int32(word)
	}
	c.f, c.r = 3, 0
	for i := 0; i < 310; i++ {
		c.next()
	}
	return c
}

// next returns the next value in [0, 2^31), like rand().
func (c *cRand) next() int {
	v := uint32(c.state[c.f]) + uint32(c.state[c.r])
	c.state[c.f] = int32(v)
	c.f++
	if c.f == 31 {
		c.f = 0
	}
	c.r++
	if c.r == 31 {
		c.r = 0
	}
	return int(v >> 1)
}

// IntN returns rand() % n, as LIBSVM draws its shuffles (n > 0).
func (c *cRand) IntN(n int) int { return c.next() % n }
