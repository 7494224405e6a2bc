/* gs.c - a program that runs Gs: 100 Gs send to one channel, main (announced as a foreign
 * thread) sums what they sent; prints "5050 0 0 0". Built by test/link.sh with every link line
 * and by test/cmake.sh with CMake. */
#include <chan.h>
#include <chan_sched_mpg.h>
#include <stdio.h>

static chan_t *c;

static void sender(void *arg)
{
    long v = (long)arg;
    chan_send(c, &v);
}

int main(void)
{
    c = chan_make(sizeof(long), 0);
    if (chan_mpg_start(2) != 0)
        return 1;
    chan_mpg_foreign_enter();
    for (long i = 1; i <= 100; i++)
        chan_mpg_go(sender, (void *)i);
    long v, sum = 0;
    for (int i = 0; i < 100; i++) {
        chan_recv(c, &v);
        sum += v;
    }
    chan_mpg_foreign_leave();
    int w = chan_mpg_wait(), s = chan_mpg_stop();
    printf("%ld %d %d %d\n", sum, w, s, chan_free(c));
    return 0;
}
