/*
 * Test-set-up work-around for a named-pipe difference of Wine 8
 * (test-only; proven by test/wine/quirks, "pipe-first-instance" and
 * "pipe-accept", and by TestWinePipeFirstInstance).
 *
 * go-winio's ListenPipe creates the pipe's first instance with only
 * SYNCHRONIZE access so that it stays disconnected: on Windows no client
 * can connect to it, and every client reaches the instances Accept
 * creates (go-winio's own TestDialListenerTimesOut pins this). Wine puts
 * every new instance in the listening state, so the first client
 * connects to that never-accepted first instance: the worker's dial and
 * its first write succeed, and the gateway's Accept waits forever.
 *
 * The gateway creates a worker's pipe before it starts the worker, so a
 * worker can take that first instance before its real dial: the first
 * ProcessPrng call of a process started with --endpoint=PIPE (a worker;
 * the flag is the worker's, see internal/worker) opens PIPE once and keeps
 * the handle. The worker's own dial (go-winio, unchanged) then lands on
 * the instance Accept waits on. It needs no switch: this DLL exists only
 * in the suite's prefix (services inherit no custom environment there,
 * so a variable could not reach a worker of the service test). The connection is the worker's, so the gateway's
 * peer-pid check, the pipe's ACL and the reject-remote flag all still
 * apply. Nothing of the product changes; on Windows this DLL is never
 * installed.
 */
#include <windows.h>
#include <shellapi.h>
#include <wchar.h>

static LONG done;

void pipefix_claim_first_instance(void)
{
    LPWSTR *argv;
    int argc;

    if (InterlockedExchange(&done, 1)) return;
    argv = CommandLineToArgvW(GetCommandLineW(), &argc);
    if (!argv) return;
    for (int i = 1; i < argc; i++) {
        const WCHAR *pipe = NULL;
        if (!wcsncmp(argv[i], L"--endpoint=", 11)) pipe = argv[i] + 11;
        else if (!wcscmp(argv[i], L"--endpoint") && i + 1 < argc) pipe = argv[i + 1];
        if (pipe) {
            /* Kept open for the life of the process, never used. */
            CreateFileW(pipe, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
            break;
        }
    }
    LocalFree(argv);
}
