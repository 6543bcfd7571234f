module hbonepeer

go 1.19
