/* The cheapest process there is: a static binary that exits 0. The redirect
 * bench execs it as the floor under any command-line tool. */
int main(void) { return 0; }
