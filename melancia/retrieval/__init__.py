"""Knowledge retrieval: chunking, the offline embedding function, the hybrid index, citations."""
