/* SPDX-License-Identifier: MIT */
/*
 * first_error - tasks of one job under a group (chan_sync.h, Go's errgroup): the first task to
 * fail cancels the group's context, the others see it and stop early, and the wait returns
 * that first error.
 *
 * Six "downloads" run with at most three at a time (chan_group_set_limit): chan_group_go
 * blocks the manager while three are running. Each download takes a number of 2 ms steps and
 * checks the group's context between steps; download 4 fails at its second step. From then
 * on the context is done: the downloads still running stop at their next step, and the ones
 * not yet started begin with a cancelled context and stop at once.
 *
 * Watch for: the wait returns download 4's error (-EIO), not the -ECANCELED of the ones it
 * stopped; downloads 1 to 3 are short and finish before the failure.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "chan.h"
#include "chan_sync.h"
#include "chan_time.h"

#define DOWNLOADS 6

struct download {
    int id, steps, done;
    int result;
};

static int download(chan_ctx_t *ctx, void *arg)
{
    struct download *d = arg;
    for (d->done = 0; d->done < d->steps; d->done++) {
        if (d->id == 4 && d->done == 2)
            return d->result = -EIO; /* the first error: cancels ctx */
        /* a step, or the end of the job if the context is done first */
        struct chan_case cs[] = {chan_case_recv(chan_ctx_done(ctx), NULL)};
        if (chan_select_until(cs, 1, chan_now() + 2 * CHAN_MILLISECOND) == 0)
            return d->result = chan_ctx_err(ctx);
    }
    return d->result = 0;
}

int main(void)
{
    /* Downloads 1-3 take 3 steps; 4 fails at its 2nd; 5 and 6 would take 2,000 (4 s). */
    struct download d[DOWNLOADS];
    for (int i = 0; i < DOWNLOADS; i++)
        d[i] = (struct download){.id = i + 1, .steps = i < 3 ? 3 : 2000};

    chan_group_t *g = chan_group_make(chan_ctx_background());
    if (!g) {
        perror("chan_group_make");
        return 1;
    }
    chan_group_set_limit(g, 3);
    for (int i = 0; i < 3; i++)
        chan_group_go(g, download, &d[i]);
    /* Let the short ones (6 ms each) finish before download 4 starts, so that its failure
     * comes after them: half a second, generous for a loaded machine. */
    chan_recv_until(NULL, NULL, chan_now() + 500 * CHAN_MILLISECOND);
    for (int i = 3; i < DOWNLOADS; i++)
        chan_group_go(g, download, &d[i]); /* blocks while three are running */
    int err = chan_group_wait(g);

    int ok = err == -EIO;
    for (int i = 0; i < DOWNLOADS; i++) {
        const char *how = d[i].result == 0            ? "finished"
                          : d[i].result == -EIO       ? "failed (-EIO)"
                          : d[i].result == -ECANCELED ? "stopped early (-ECANCELED)"
                                                      : "?";
        printf("download %d: %s\n", d[i].id, how);
        fprintf(stderr, "  download %d: %d of %d steps\n", d[i].id, d[i].done, d[i].steps);
        ok &= i < 3 ? d[i].result == 0 : i == 3 || d[i].result == -ECANCELED;
    }
    printf("the group's wait returned %s\n",
           err == -EIO ? "-EIO, the first error" : strerror(-err));
    chan_group_free(g);
    return ok ? 0 : 1;
}
