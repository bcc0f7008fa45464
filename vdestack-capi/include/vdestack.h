/* vdestack.h: a network namespace as a library (libvdestack.so.0).
 *
 * The same declarations as Debian's libvdestack-dev header, served by the Rust
 * re-implementation (vdestack-capi). Link with `pkg-config --libs vdestack`.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef VDESTACK_H
#define VDESTACK_H

#ifdef __cplusplus
extern "C" {
#endif

/* An opaque handle: never dereference it. */
struct vdestack;

/* Creates a stack: a private network namespace (in a user namespace of its own).
 * vdenet NULL or "": only `lo` (down); "=COMMAND ARGS": one interface whose frames
 * go to a coprocess over its stdin/stdout; otherwise a VDE network (VNL), e.g.
 * "vde:///tmp/switch" or "vxvde://239.1.2.3". ifname is the interface's name in
 * the stack (NULL: "vde0"; 1 to 15 bytes, no ':', '/' or blanks, else EINVAL).
 * Returns NULL with errno set on failure. */
struct vdestack *vde_addstack(char *vdenet, char *ifname);

/* Deletes a stack: its interface and plug close. Sockets already made in it stay
 * valid. Clears the default stack if it is this one. A NULL or already deleted
 * handle is ignored (errno EINVAL). The helper process that all stacks of the
 * program share lingers 250 ms after the last stack (so that the next stack made
 * meanwhile starts faster), then exits, leaving no process, fd or thread behind;
 * VDESTACK_HELPER_LINGER_MS in the environment sets that time (0: it ends with the
 * last stack). */
void vde_delstack(struct vdestack *stack);

/* Makes plain socket() calls (from this program and its libraries) create their
 * sockets in `stack`; NULL goes back to the host's stack. An unknown handle leaves
 * the default unchanged (errno EINVAL). */
void vde_default_stack(struct vdestack *stack);

/* Runs ';'-separated commands in the stack (absolute paths: no PATH search, no
 * shell; quotes and backslashes as in a shell), one after the other, with the
 * network capabilities. Returns 0 if all succeed, else the exit status of the
 * first that fails (2 if it could not be executed, 128+N if killed by signal N),
 * or -1 with errno if the stack could not run it. */
int vde_stackcmd(struct vdestack *stack, char *stackcmd);

/* socket(2) in the stack's namespace: a normal fd, or -1 with errno. */
int vde_msocket(struct vdestack *stack, int domain, int type, int protocol);

#ifdef __cplusplus
}
#endif

#endif
