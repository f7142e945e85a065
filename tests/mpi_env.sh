# mpi_env.sh — Open MPI settings for tests: root, more ranks than cores, no
# ssh, shared-memory transport (see README "MPI").
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_plm_rsh_agent=false
export OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1
