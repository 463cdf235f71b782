//! HDF5 episode files (robomimic, robosuite, ALOHA) through the HDF5 C library
//! (`hdf5-metno`, Debian's libhdf5): the layout is recognised by its groups, each demo
//! becomes an episode and each dataset row a step. See docs/design.md "HDF5".

pub mod ingest;
pub mod layout;
