// The traced program of the cpp_method example: an Account whose deposit() method it calls in a loop.
// usage: account [ITERATIONS (-1: forever)] [SLEEP_US between iterations]
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

class Account {
public:
    explicit Account(long balance) : balance_(balance) {}
    long deposit(long amount);

private:
    long balance_;
};

// noipa: keep the call (and its symbol, _ZN7Account7depositEl) even with optimization
__attribute__((noipa)) long Account::deposit(long amount)
{
    balance_ += amount;
    return balance_;
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? std::atol(argv[1]) : -1;
    long sleep_us = argc > 2 ? std::atol(argv[2]) : 100000;
    Account account(100);

    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::printf("account pid %d\n", static_cast<int>(getpid()));
    for (long i = 1; iterations < 0 || i <= iterations; i++) {
        account.deposit(i);
        if (sleep_us > 0)
            usleep(static_cast<useconds_t>(sleep_us));
    }
    return 0;
}
