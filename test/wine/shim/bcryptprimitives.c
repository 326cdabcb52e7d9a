/*
 * bcryptprimitives.dll for Wine (test-only, see test/wine/doc.go).
 *
 * Go >= 1.22 on Windows takes its randomness from ProcessPrng in
 * bcryptprimitives.dll, which Wine 8 does not have: every Go program aborts
 * at start-up with "bcryptprimitives.dll not found". The Wine suite builds
 * this file twice with MinGW (i686 into the prefix's syswow64, x86_64 into
 * system32). ProcessPrng fills the buffer from RtlGenRandom (advapi32's
 * SystemFunction036), which takes a ULONG length, hence the loop.
 *
 * It also carries the suite's work-around for a Wine named-pipe difference
 * (pipefix.c): the Go runtime calls ProcessPrng before main, which is the
 * earliest point a test-only hook can run inside a worker process.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
void pipefix_claim_first_instance(void);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    pipefix_claim_first_instance();
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
