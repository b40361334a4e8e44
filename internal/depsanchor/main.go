package main
import (
 _ "github.com/stretchr/testify/require"
 _ "github.com/olekukonko/tablewriter"
 _ "gonum.org/v1/plot"
 _ "gonum.org/v1/plot/plotter"
 _ "gonum.org/v1/plot/vg"
 _ "github.com/schollz/progressbar/v3"
 _ "github.com/parquet-go/parquet-go"
 _ "golang.org/x/text/unicode/norm"
 _ "golang.org/x/sys/unix"
)
func main(){}
