package worker

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// reportProcessUsage reports what a child worker process spent per
// operation (start-up included, so run many): its context switches are
// its wake-ups, the figure the machine's load disturbs least.
func reportProcessUsage(b *testing.B, ps *os.ProcessState) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || b.N == 0 {
		return
	}
	n := float64(b.N)
	b.ReportMetric(float64(ru.Nvcsw+ru.Nivcsw)/n, "worker-ctxsw/op")
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/n, "worker-cpu-µs/op")
}
