package svm

import (
	"math/rand/v2"
	"strconv"
)

func strconvParse(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

// newRand is the tests' seeded generator.
func newRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
}
