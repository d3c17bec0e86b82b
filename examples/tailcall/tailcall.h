/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Slots of tailcall.bpf.c's prog array and counters (tailcall.py uses the same numbers). */
#ifndef TAILCALL_H
#define TAILCALL_H

enum slot {
    SLOT_IPV4 = 0,
    SLOT_IPV6 = 1,
    SLOT_ARP = 2,
    SLOT_UNHANDLED = 3, /* counters only: packets whose slot held no program */
    SLOTS = 4,
};

#endif /* TAILCALL_H */
