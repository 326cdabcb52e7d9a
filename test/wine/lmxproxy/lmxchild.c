/*
 * lmxchild.exe: a process the stand-in LmxProxy.dll starts on a write to
 * StandIn.SpawnChild (test-only). It does nothing until it is killed; the
 * Wine suite checks that the worker's Job Object takes it with the worker.
 * Its one argument is the marker the suite looks for in the process list.
 */
#include <windows.h>

int WINAPI WinMain(HINSTANCE inst, HINSTANCE prev, LPSTR cmd, int show)
{
    (void)inst; (void)prev; (void)cmd; (void)show;
    Sleep(INFINITE);
    return 0;
}
